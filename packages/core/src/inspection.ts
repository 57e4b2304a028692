/**
 * What the broker holds, as opposed to what one process saw: backlog per (type, group), dead
 * letters at rest. The same shape on every driver; a field a broker cannot tell is `undefined`,
 * never a guess.
 */

/** Which (type, group) pairs to report. */
export interface InspectQuery {
  /** Only these message types (default: every type the broker knows of). */
  readonly types?: readonly string[];
  /**
   * Pairs to report even where the broker cannot list groups by itself (RabbitMQ without its
   * management API): each is looked up directly. Pairs the broker lists are reported anyway.
   */
  readonly groups?: readonly { readonly type: string; readonly group: string }[];
}

export interface PartitionLag {
  readonly partition: number;
  /** Records after the group's committed offset (end offset − committed). */
  readonly lag: number;
}

export interface GroupState {
  readonly type: string;
  readonly group: string;
  /** Messages waiting for this group: published, not yet delivered to any of its consumers. */
  readonly backlog: number;
  /** Delivered to a consumer and not settled yet (`undefined` where the broker cannot tell). */
  readonly inFlight: number | undefined;
  /** Age in ms of the oldest waiting message, where the broker can tell. */
  readonly oldestWaitingMs: number | undefined;
  /** Consumers attached now (processes × subscriptions, as the broker counts them). */
  readonly consumers: number | undefined;
  /** Failed deliveries waiting for their retry delay. */
  readonly retryBacklog: number | undefined;
  /** Kafka: the lag of each partition of the type's topic. */
  readonly partitions?: readonly PartitionLag[];
}

export interface DeadLetterState {
  /** The dead-letter type (`<type>.dlq` unless a consumer chose another). */
  readonly type: string;
  /** Dead letters stored at rest, not yet replayed or removed. */
  readonly count: number;
  /** Age in ms of the oldest stored dead letter, where the broker can tell. */
  readonly oldestAgeMs: number | undefined;
}

export interface Inspection {
  readonly driver: string;
  /** When it was read (epoch ms). */
  readonly takenAt: number;
  readonly groups: readonly GroupState[];
  readonly deadLetters: readonly DeadLetterState[];
}

/** The transport's side of `QueueManager.inspect()` (driver kit; optional on a Transport). */
export interface TransportInspection {
  readonly groups: readonly GroupState[];
  readonly deadLetters: readonly DeadLetterState[];
}

/** One dead letter at rest, as `queue.deadLetters.browse` returns it. */
export interface DeadLetterRecord {
  readonly id: string;
  /** The dead-letter type it is stored under. */
  readonly type: string;
  /** The type it was consumed from (`x-plugmq-original-type`); replay publishes it there. */
  readonly originalType: string | undefined;
  /** Why it was dead-lettered (`x-plugmq-error`). */
  readonly error: string | undefined;
  /** Deliveries it had before it was dead-lettered (`x-plugmq-attempts`). */
  readonly attempts: number | undefined;
  readonly key?: string;
  /** Application headers (the three dead-letter headers are the fields above). */
  readonly headers: Readonly<Record<string, string>>;
  /** The decoded body; the raw bytes where no codec could decode it (see `decodeError`). */
  readonly body: unknown;
  readonly decodeError?: string;
  /** When the original message was published (epoch ms). */
  readonly timestamp: number;
}

export interface BrowseDeadLettersOptions {
  /** Oldest first, at most this many (1 to 1000, default 100). */
  readonly limit?: number;
}

export interface ReplayDeadLettersOptions {
  /** Replay at most this many, oldest first (positive integer; default: all stored now). */
  readonly limit?: number;
  /** Stops the replay between messages; what was replayed stays replayed. */
  readonly signal?: AbortSignal;
}

/**
 * Dead letters at rest in the broker (`queue.deadLetters`): kept in the group
 * `plugmq.dead-letters` of each dead-letter type from the moment a consumer that can dead-letter
 * into it subscribed, whichever process reads them later.
 */
export interface DeadLetters {
  /** Stored dead letters of `type` (e.g. `orders.dlq`), oldest first, without taking them. */
  browse(type: string, options?: BrowseDeadLettersOptions): Promise<DeadLetterRecord[]>;
  /**
   * Publishes stored dead letters of `type` back to their original type (attempt 1, same id,
   * body, key and application headers) and removes them; resolves with how many were replayed.
   * A publish that fails (no group consumes the original type: PUBLISH_FAILED) leaves that dead
   * letter and the later ones stored, and rejects.
   */
  replay(type: string, options?: ReplayDeadLettersOptions): Promise<number>;
}
