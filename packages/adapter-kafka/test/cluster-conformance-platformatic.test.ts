import { runKafkaClusterConformance } from './cluster-conformance-suite.js';

// The same conformance suite on the cluster through the second client (`client: 'platformatic'`).
runKafkaClusterConformance('platformatic');
