import { runKafkaClusterFaultSuite } from './kafka-cluster-suite.js';

runKafkaClusterFaultSuite('kafkajs');
