import { describeError, PlugmqError, redactCredentials } from '@plugmq/core/driver';

/** What the management API tells of one queue beyond AMQP's passive declare. */
export interface ManagedQueue {
  readonly name: string;
  /** Delivered, not acknowledged yet. */
  readonly unacknowledged: number | undefined;
  /** Epoch ms of the head message's `timestamp` property (classic queues only). */
  readonly headTimestampMs: number | undefined;
}

/** Below this an AMQP `timestamp` is in seconds (other producers), above it in ms (PlugMQ's). */
const SECONDS_LIMIT = 100_000_000_000;
const COLUMNS = 'name,messages_unacknowledged,head_message_timestamp';

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/**
 * A client of RabbitMQ's management HTTP API (the `rabbitmq_management` plugin), used only by
 * `inspect()`: AMQP cannot list queues nor tell unacknowledged counts or the head message's age.
 * Credentials come from `managementUrl`'s user info, else from the AMQP URL's; they travel in a
 * Basic authorization header and never appear in an error.
 */
export class ManagementApi {
  private readonly base: string;
  private readonly authorization: string;
  private readonly vhostPath: string;

  constructor(
    managementUrl: string,
    amqpUrl: string,
    private readonly timeoutMs: number,
  ) {
    const url = new URL(managementUrl);
    const amqp = new URL(amqpUrl);
    const user = decodeURIComponent(url.username || amqp.username || 'guest');
    const password = decodeURIComponent(url.password || (url.username ? '' : amqp.password) || 'guest');
    this.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    url.username = '';
    url.password = '';
    this.base = url.href.replace(/\/+$/, '');
    // The AMQP URL's path is the vhost ('/' when empty), percent-encoded as the API wants it.
    const vhost = decodeURIComponent(amqp.pathname.replace(/^\//, '')) || '/';
    this.vhostPath = encodeURIComponent(vhost);
  }

  /** Every queue of the vhost whose name starts with `prefix`. */
  async queues(prefix: string): Promise<ManagedQueue[]> {
    const path = `/api/queues/${this.vhostPath}?columns=${COLUMNS}`;
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        headers: { authorization: this.authorization, accept: 'application/json' },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new PlugmqError(
        'CONNECTION',
        `the RabbitMQ management API at ${this.base} did not answer: ${redactCredentials(describeError(error))}`,
        { cause: error },
      );
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      throw new PlugmqError(
        'CONNECTION',
        `the RabbitMQ management API at ${this.base} answered ${response.status} ${response.statusText}${response.status === 401 ? ' (check the user and password of managementUrl)' : ''}`,
      );
    }
    const rows = (await response.json()) as unknown;
    if (!Array.isArray(rows)) return [];
    const out: ManagedQueue[] = [];
    for (const row of rows as Record<string, unknown>[]) {
      const name = row.name;
      if (typeof name !== 'string' || !name.startsWith(prefix)) continue;
      const head = count(row.head_message_timestamp);
      out.push({
        name,
        unacknowledged: count(row.messages_unacknowledged),
        headTimestampMs:
          head === undefined || head === 0 ? undefined : head < SECONDS_LIMIT ? head * 1000 : head,
      });
    }
    return out;
  }
}
