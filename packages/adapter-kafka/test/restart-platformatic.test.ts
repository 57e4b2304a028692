import { restartTests } from './restart-cases.js';

restartTests('platformatic');
