/** @platformatic/kafka error shapes the client and the group member both read. */

/** Thrown by a batch's heartbeat once the member re-joined since the batch was fetched. */
export class RebalancingError extends Error {
  override readonly name = 'PlatformaticRebalancing';
  constructor() {
    super('the kafka group is rebalancing');
  }
}

interface ErrorLike {
  code?: unknown;
  apiId?: unknown;
  canRetry?: unknown;
  errors?: unknown;
  cause?: unknown;
}

/**
 * Every error of a chain: the library wraps retried calls in MultipleErrors (`errors`) and
 * protocol answers in ResponseError (`errors`, one per failed partition).
 */
export function chainErrors(error: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const visit = (current: unknown, depth: number) => {
    if (!current || typeof current !== 'object' || depth > 6) return;
    const e = current as ErrorLike;
    out.push(e);
    if (Array.isArray(e.errors)) for (const inner of e.errors as unknown[]) visit(inner, depth + 1);
    if (e.cause !== undefined) visit(e.cause, depth + 1);
  };
  visit(error, 0);
  return out;
}

function isLeaf(e: ErrorLike): boolean {
  return !(Array.isArray(e.errors) && e.errors.some(Boolean)) && (e.cause === undefined || e.cause === null);
}

/** Kafka error names (`NOT_LEADER_OR_FOLLOWER`, …) found anywhere in the chain. */
export function apiIds(error: unknown): Set<string> {
  const ids = new Set<string>();
  for (const e of chainErrors(error)) if (typeof e.apiId === 'string') ids.add(e.apiId);
  return ids;
}

export function hasApiId(error: unknown, names: ReadonlySet<string>): boolean {
  for (const id of apiIds(error)) if (names.has(id)) return true;
  return false;
}

/**
 * OUT_OF_BOUNDS: a response cut short, read by the library's buffer (a node stopping while it
 * answered; seen in rolling restarts).
 */
const TRANSIENT_CODES = new Set(['PLT_KFK_NETWORK', 'PLT_KFK_TIMEOUT', 'OUT_OF_BOUNDS']);

/**
 * A send still in flight on a producer the client replaced (resetProducer closes the old one after
 * a fencing error on another partition) fails with this plain Error: the records go again on the
 * new producer.
 */
function isClosedPool(e: ErrorLike): boolean {
  return e.code === undefined && (e as { message?: unknown }).message === 'Connection pool is closed.';
}

/**
 * The library turns a metadata answer of UNKNOWN_TOPIC_OR_PARTITION into a non-retriable user
 * error; right after a topic is created (by this process or another) it is only not known yet.
 */
function isUnknownTopic(e: ErrorLike): boolean {
  return e.code === 'PLT_KFK_USER' && /^Unknown topic /.test(String((e as { message?: unknown }).message));
}

/**
 * Retriable when the innermost errors are network errors, timeouts or protocol errors Kafka marks
 * retriable (leader moving, coordinator loading, …).
 */
export function isTransient(error: unknown): boolean {
  const leaves = chainErrors(error).filter(isLeaf);
  if (leaves.length === 0) return false;
  let any = false;
  for (const leaf of leaves) {
    if (typeof leaf.apiId === 'string') {
      if (leaf.canRetry !== true) return false;
      any = true;
    } else if (
      isUnknownTopic(leaf) ||
      isClosedPool(leaf) ||
      (typeof leaf.code === 'string' && TRANSIENT_CODES.has(leaf.code))
    ) {
      any = true;
    } else if (
      typeof leaf.code === 'string' &&
      /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|NOTFOUND|AI_AGAIN)$/.test(leaf.code)
    ) {
      any = true;
    }
  }
  return any;
}

/** What a failed connect met, in the words the kafkajs client uses (socket-watch.ts). */
export function connectFailure(error: unknown): string {
  const chain = chainErrors(error);
  const leaves = chain.filter(isLeaf) as (ErrorLike & {
    message?: string;
    hostname?: string;
    address?: string;
    port?: number;
  })[];
  const reasons = new Set<string>();
  for (const leaf of leaves) {
    if (leaf.code === 'ECONNREFUSED') reasons.add(`connection refused at ${leaf.address}:${leaf.port}`);
    else if (leaf.code === 'ENOTFOUND' || leaf.code === 'EAI_AGAIN')
      reasons.add(`host not found: ${leaf.hostname}`);
    else if (leaf.code === 'PLT_KFK_AUTHENTICATION') reasons.add(`authentication refused (${leaf.message})`);
    else if (typeof leaf.message === 'string' && leaf.message) reasons.add(leaf.message);
  }
  return [...reasons].join('; ');
}
