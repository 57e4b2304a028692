import { expect, it } from 'vitest';
import { type BrokerHandle, proxyRoute } from '../src/brokers/index.js';

function handle(fields: Pick<BrokerHandle, 'kind' | 'url' | 'source'> & Partial<BrokerHandle>): BrokerHandle {
  const refuse = async () => {
    throw new Error('not started by this test');
  };
  return { stop: async () => {}, restart: refuse, kill: refuse, ...fields };
}

it('proxies Redis and RabbitMQ at their URL, on any free port', () => {
  expect(proxyRoute(handle({ kind: 'redis', url: 'redis://127.0.0.1:6390', source: 'env' }))).toEqual({
    listenPort: 0,
    targetHost: '127.0.0.1',
    targetPort: 6390,
  });
  expect(
    proxyRoute(handle({ kind: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:5673', source: 'container' })),
  ).toEqual({ listenPort: 0, targetHost: '127.0.0.1', targetPort: 5673 });
});

it("proxies Kafka only through its proxied listener: a user's broker has none, and says so", () => {
  const proxied = { listenPort: 40001, targetHost: '127.0.0.1', targetPort: 40002 };
  const ours = handle({ kind: 'kafka', url: 'kafka://127.0.0.1:40000', source: 'container', proxied });
  expect(proxyRoute(ours)).toEqual(proxied);
  const users = handle({ kind: 'kafka', url: 'kafka://127.0.0.1:9092', source: 'env' });
  expect(proxyRoute(users)).toMatch(/kafka broker \(env\) has no listener advertised at a proxy's port/);
});
