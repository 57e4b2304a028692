import { runKafkaClusterConformance } from './cluster-conformance-suite.js';

runKafkaClusterConformance('kafkajs');
