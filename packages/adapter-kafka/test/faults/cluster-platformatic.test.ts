import { runKafkaClusterFaultSuite } from './kafka-cluster-suite.js';

// The same cluster faults on the second client (`client: 'platformatic'`), on a cluster of its own.
runKafkaClusterFaultSuite('platformatic');
