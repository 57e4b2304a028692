import { DEAD_LETTER_GROUP, defaultDeadLetterType } from './dead-letter.js';
import { DeadLetterStore, type DeadLetterStoreDeps } from './dead-letter-store.js';
import { PlugmqError } from './errors.js';
import type { Inspection, InspectQuery } from './inspection.js';
import type { Transport } from './transport.js';
import { assertMessageType, invalidArgument } from './validation.js';

/**
 * The manager's broker-side view: `inspect()`, and the dead-letter groups kept at rest. A
 * dead-letter group is created (`Transport.ensureGroup`) before the first consumer that can
 * dead-letter into its type subscribes, so no dead letter is published before it exists.
 */
export class BrokerInspector {
  /** Dead-letter types of this manager's subscriptions, past and present, for inspect(). */
  private readonly deadLetterTypes = new Set<string>();
  /** One ensureGroup per dead-letter type per manager; a failed one is forgotten and tried again. */
  /** Per dead-letter type: `true` once ensured synchronously, else the broker's answer. */
  private readonly ensured = new Map<string, Promise<void> | true>();

  readonly deadLetters: DeadLetterStore;
  private readonly driver: string;
  private readonly transport: () => Transport;
  private readonly assertOpen: () => void;

  constructor(deps: Omit<DeadLetterStoreDeps, 'noteDeadLetterType'>) {
    this.driver = deps.driver;
    this.transport = deps.transport;
    this.assertOpen = deps.assertOpen;
    this.deadLetters = new DeadLetterStore({
      ...deps,
      noteDeadLetterType: (type) => this.deadLetterTypes.add(type),
    });
  }

  /**
   * Called by consume before the transport subscribes: the dead-letter group of every type the
   * subscription can dead-letter into. Rejects (and so does consume) when the broker refuses.
   * Returns nothing when there is nothing to wait for (no transport support, already ensured, or
   * ensured synchronously), so consume reaches the transport in the same turn.
   */
  keepDeadLetters(
    types: readonly string[],
    deadLetter: string | false | undefined,
  ): Promise<void> | undefined {
    if (deadLetter === false) return undefined;
    const targets = new Set(types.map((type) => deadLetter || defaultDeadLetterType(type)));
    const transport = this.transport();
    const pending: Promise<void>[] = [];
    for (const target of targets) {
      this.deadLetterTypes.add(target);
      if (typeof transport.ensureGroup !== 'function') continue;
      let ensuring = this.ensured.get(target);
      if (ensuring === undefined) {
        const result = transport.ensureGroup(target, DEAD_LETTER_GROUP);
        ensuring = result === undefined ? true : result;
        this.ensured.set(target, ensuring);
        if (ensuring !== true) ensuring.catch(() => this.ensured.delete(target));
      }
      if (ensuring !== true) pending.push(ensuring);
    }
    return pending.length === 0 ? undefined : Promise.all(pending).then(() => undefined);
  }

  async inspect(query: InspectQuery | undefined): Promise<Inspection> {
    this.assertOpen();
    const checked = validateInspectQuery(query);
    const transport = this.transport();
    if (typeof transport.inspect !== 'function') {
      throw new PlugmqError(
        'UNSUPPORTED',
        `the ${this.driver} driver cannot report broker-side state (its transport has no inspect)`,
      );
    }
    const only = checked.types === undefined ? undefined : new Set(checked.types);
    const deadLetterTypes = [...this.deadLetterTypes].filter((type) => only === undefined || only.has(type));
    const takenAt = Date.now();
    const state = await transport.inspect({ ...checked, deadLetterTypes });
    return {
      driver: this.driver,
      takenAt,
      // The reserved group is reported as dead letters, not as a group someone consumes.
      groups: state.groups.filter(
        (group) => group.group !== DEAD_LETTER_GROUP && (only === undefined || only.has(group.type)),
      ),
      deadLetters: state.deadLetters.filter((dead) => only === undefined || only.has(dead.type)),
    };
  }
}

function validateInspectQuery(query: InspectQuery | undefined): InspectQuery {
  if (query === undefined) return {};
  if (typeof query !== 'object' || query === null) throw invalidArgument('query', 'an object', query);
  const { types, groups } = query;
  if (types !== undefined) {
    if (!Array.isArray(types)) throw invalidArgument('query.types', 'an array of message types', types);
    for (const [index, type] of types.entries()) assertMessageType(type, `query.types[${index}]`);
  }
  if (groups !== undefined) {
    if (!Array.isArray(groups)) {
      throw invalidArgument('query.groups', 'an array of { type, group }', groups);
    }
    groups.forEach((pair, index) => {
      if (typeof pair !== 'object' || pair === null) {
        throw invalidArgument(`query.groups[${index}]`, 'an object { type, group }', pair);
      }
      assertMessageType(pair.type, `query.groups[${index}].type`);
      if (typeof pair.group !== 'string' || pair.group.length === 0) {
        throw invalidArgument(`query.groups[${index}].group`, 'a non-empty string', pair.group);
      }
    });
  }
  return {
    ...(types === undefined ? {} : { types: [...types] }),
    ...(groups === undefined ? {} : { groups: groups.map(({ type, group }) => ({ type, group })) }),
  };
}
