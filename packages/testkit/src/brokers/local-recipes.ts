import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { kafkaListeners } from './kafka-listeners.js';
import { freePort } from './ports.js';
import type { BrokerKind, ProxiedListener, StartBrokerOptions } from './types.js';
import { KAFKA_VERSION } from './versions.js';

// How to run each broker as a plain local process in its own data dir, on free loopback ports.
// The same programs `pnpm brokers:up` runs (Debian's redis-server and rabbitmq-server, Kafka's
// Maven jars), but private to one test run so several can run side by side.

export interface Launch {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

export interface Recipe {
  url: string;
  /** Kafka's listener for a TCP proxy, when asked for (see StartBrokerOptions.proxiedListener). */
  proxied?: ProxiedListener;
  /** RabbitMQ's management API, when asked for (StartBrokerOptions.management). */
  managementUrl?: string;
  /** Long-lived helpers started once (RabbitMQ's private epmd), before the broker. */
  helpers: Launch[];
  /** One-time preparation of the data dir (Kafka's storage format). */
  prepare?: Launch;
  broker: Launch;
}

export function which(command: string): string | undefined {
  if (command.includes('/')) return existsSync(command) ? command : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, command);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

/** Kafka's jars: where tools/brokers/lib.sh fetches them (`PLUGMQ_CACHE`), or `PLUGMQ_KAFKA_LIBS`. */
export function kafkaLibs(): string {
  const cache = process.env.PLUGMQ_CACHE || join(homedir(), '.cache', 'plugmq');
  return process.env.PLUGMQ_KAFKA_LIBS || join(cache, `kafka-libs-${KAFKA_VERSION}`);
}

/** Why this machine cannot run `kind` as a local process, with the command that fixes it. */
export function missingProgram(kind: BrokerKind): string | undefined {
  if (kind === 'redis') {
    return which('redis-server')
      ? undefined
      : 'redis-server is not installed (pnpm brokers:up redis installs it)';
  }
  if (kind === 'rabbitmq') {
    if (!existsSync(RABBITMQ_SERVER) || !which('epmd')) {
      return 'rabbitmq-server is not installed (pnpm brokers:up rabbitmq installs it)';
    }
    return undefined;
  }
  if (!which('java')) return 'java is not installed (pnpm brokers:up kafka installs a JRE)';
  if (!existsSync(join(kafkaLibs(), `kafka_2.13-${KAFKA_VERSION}.jar`))) {
    return `Kafka ${KAFKA_VERSION} jars are not in ${kafkaLibs()} (pnpm brokers:up kafka fetches them)`;
  }
  return undefined;
}

export async function recipeFor(kind: BrokerKind, dir: string, options: StartBrokerOptions): Promise<Recipe> {
  if (kind === 'kafka') return kafkaRecipe(dir, options.proxiedListener === true);
  const port = await freePort();
  if (kind === 'redis') {
    return {
      url: `redis://127.0.0.1:${port}`,
      helpers: [],
      broker: {
        command: 'redis-server',
        // appendfsync always: acknowledged writes survive kill -9, as in the container.
        args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''].concat([
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
          '--daemonize',
          'no',
        ]),
      },
    };
  }
  // A private epmd: Erlang would otherwise start a daemonized one that outlives the test run.
  const epmdPort = await freePort();
  const distPort = await freePort();
  const managementPort = options.management ? await freePort() : undefined;
  await writeFile(
    join(dir, 'enabled_plugins'),
    managementPort === undefined ? '[].\n' : '[rabbitmq_management].\n',
  );
  await writeFile(
    join(dir, 'rabbitmq.conf'),
    managementPort === undefined
      ? 'loopback_users = none\n'
      : [
          'loopback_users = none',
          'management.tcp.ip = 127.0.0.1',
          `management.tcp.port = ${managementPort}`,
          'collect_statistics_interval = 500',
          '',
        ].join('\n'),
  );
  await writeFile(join(dir, 'rabbitmq-env.conf'), '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_NODENAME: `plugmq${port}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_LOGS: '-',
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
  };
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    ...(managementPort === undefined ? {} : { managementUrl: `http://127.0.0.1:${managementPort}` }),
    helpers: [{ command: 'epmd', args: ['-port', String(epmdPort), '-address', '127.0.0.1'] }],
    broker: { command: RABBITMQ_SERVER, args: [], env },
  };
}

// The properties file is written once, so restart() and kill() keep every listener's port.
async function kafkaRecipe(dir: string, withProxied: boolean): Promise<Recipe> {
  const plan = await kafkaListeners(withProxied);
  const props = join(dir, 'server.properties');
  await writeFile(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${plan.controllerPort}`,
      `listeners=${plan.listeners}`,
      `advertised.listeners=${plan.advertised}`,
      'controller.listener.names=CONTROLLER',
      `listener.security.protocol.map=${plan.protocolMap}`,
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=3',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=3',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=false',
      'log.flush.interval.messages=1',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(dir, 'log4j.properties'),
    'log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n' +
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n' +
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n',
  );
  const classpath = [
    '-cp',
    `${kafkaLibs()}/*`,
    `-Dlog4j.configuration=file:${join(dir, 'log4j.properties')}`,
  ];
  return {
    url: `kafka://127.0.0.1:${plan.port}`,
    proxied: plan.proxied,
    helpers: [],
    prepare: {
      command: 'java',
      args: [...classpath, 'kafka.tools.StorageTool', 'format', '-t', '5L6g3nShT-eMCtK--X86sw', '-c', props],
    },
    broker: { command: 'java', args: ['-Xms256m', '-Xmx512m', ...classpath, 'kafka.Kafka', props] },
  };
}
