import { runKafkaFaultSuite } from './kafka-fault-suite.js';

// The same suite on the second client (`client: 'platformatic'`), as issue 21 asks of both.
runKafkaFaultSuite('platformatic');
