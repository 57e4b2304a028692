import { DelayMover, type DelayMoverDeps } from './delay-mover.js';

interface Entry {
  readonly mover: DelayMover;
  readonly started: Promise<void>;
  users: number;
}

/**
 * The delay movers of one transport: one per consumed type, shared by its subscriptions, so
 * delayed messages move while (and only while) some manager consumes the type.
 */
export class DelayMovers {
  private readonly entries = new Map<string, Entry>();
  private readonly finishing = new Set<Promise<void>>();

  constructor(private readonly deps: DelayMoverDeps) {}

  /**
   * Starts (or shares) the mover of each type; resolves once each joined its group. Moves begin
   * once `ready` settles (the subscription that asked joined its own group). On failure what
   * this call acquired is released again.
   */
  async acquire(types: readonly string[], ready: Promise<unknown>): Promise<void> {
    const acquired: Entry[] = [];
    try {
      for (const type of types) {
        let entry = this.entries.get(type);
        if (!entry) {
          const mover = new DelayMover(type, this.deps);
          const started = mover.start();
          entry = { mover, started, users: 0 };
          this.entries.set(type, entry);
          const created = entry;
          started.then(
            () => void ready.finally(() => created.mover.open()).catch(() => {}),
            () => {
              // Forget a failed start so the next subscription of the type tries again.
              if (this.entries.get(type) === created) this.entries.delete(type);
            },
          );
        }
        entry.users++;
        acquired.push(entry);
      }
      await Promise.all(acquired.map((entry) => entry.started));
    } catch (error) {
      for (const entry of acquired) this.drop(entry);
      throw error;
    }
  }

  /** The last subscription of a type stopped here: its mover stops (and hands back what it held). */
  release(types: readonly string[]): void {
    for (const type of types) {
      const entry = this.entries.get(type);
      if (entry) this.drop(entry);
    }
  }

  private drop(entry: Entry): void {
    if (--entry.users > 0) return;
    if (this.entries.get(entry.mover.type) === entry) this.entries.delete(entry.mover.type);
    const done = entry.started
      .then(
        () => {
          entry.mover.stop();
          return entry.mover.whenFinished();
        },
        () => {},
      )
      .finally(() => this.finishing.delete(done));
    this.finishing.add(done);
  }

  /** Resolves once every stopped mover committed and left its group. */
  async whenFinished(): Promise<void> {
    await Promise.allSettled([...this.finishing]);
  }
}
