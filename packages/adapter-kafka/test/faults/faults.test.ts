import { runKafkaFaultSuite } from './kafka-fault-suite.js';

runKafkaFaultSuite('kafkajs');
