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
