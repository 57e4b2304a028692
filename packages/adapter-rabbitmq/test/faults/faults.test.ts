import { fileURLToPath } from 'node:url';
import { runFaultSuite } from '@plugmq/testkit';
import * as amqp from 'amqplib';
import { driver } from '../../src/index.js';
import { inspectLostOnRabbit } from './inspect-lost.js';

const exchange = 'plugmq-faults';

runFaultSuite({
  name: 'rabbitmq',
  kind: 'rabbitmq',
  driver,
  config: (url) => ({ driver: 'rabbitmq', url, exchange, reconnectMaxDelayMs: 1_000 }),
  inspectLost: (url) => inspectLostOnRabbit(url, exchange),
  driverModule: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
  coreEntry: fileURLToPath(new URL('../../../core/src/index.ts', import.meta.url)),
  async injectMalformed(url, type) {
    const connection = await amqp.connect(url);
    // The dead letter read off the wire, as an operator's tool would: a private queue on <type>.dlq.
    const reader = await connection.createChannel();
    const { queue } = await reader.assertQueue('', { exclusive: true });
    await reader.bindQueue(queue, exchange, `${type}.dlq`);
    const dead: amqp.ConsumeMessage[] = [];
    await reader.consume(queue, (message) => message && dead.push(message), { noAck: true });
    // A foreign producer: JSON content type, a body that is not JSON, confirmed by the broker.
    const channel = await connection.createConfirmChannel();
    channel.publish(exchange, type, Buffer.from('{not json'), {
      contentType: 'application/json',
      persistent: true,
    });
    await channel.waitForConfirms();
    await channel.close();
    return {
      async error() {
        const header = dead[0]?.properties.headers?.['x-plugmq-error'];
        return header === undefined ? undefined : String(header);
      },
      close: () => connection.close(),
    };
  },
});
