import { rebalanceTests } from './rebalance-cases.js';

rebalanceTests('kafkajs');
