import { PlugmqError } from './errors.js';
import type { Consumer, QueueManager, Subscription } from './types.js';

/**
 * Registers Consumer objects and runs them together: `startAll` subscribes every one (all or
 * none), `stopAll` closes them and waits for in-flight handlers to finish.
 */
export class ConsumerManager {
  private readonly consumers: Consumer[] = [];
  private subscriptions: Subscription[] = [];
  private starting: Promise<void> | undefined;

  constructor(private readonly queue: QueueManager) {}

  register(consumer: Consumer): this {
    if (typeof consumer !== 'object' || consumer === null || typeof consumer.handle !== 'function') {
      throw new PlugmqError(
        'INVALID_ARGUMENT',
        'consumer must be an object with types, group and a handle(message, context) method',
      );
    }
    if (this.subscriptions.length > 0 || this.starting) {
      throw new PlugmqError('INVALID_ARGUMENT', 'register consumers before startAll() (or after stopAll())');
    }
    this.consumers.push(consumer);
    return this;
  }

  get registered(): readonly Consumer[] {
    return this.consumers;
  }

  startAll(): Promise<void> {
    this.starting ??= this.subscribeAll().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  async stopAll(): Promise<void> {
    await this.starting?.catch(() => {});
    const running = this.subscriptions;
    this.subscriptions = [];
    await Promise.all(running.map((subscription) => subscription.close()));
  }

  private async subscribeAll(): Promise<void> {
    if (this.subscriptions.length > 0) return;
    const started: Subscription[] = [];
    try {
      for (const consumer of this.consumers) {
        started.push(
          await this.queue.consume(consumer.types, (message, context) => consumer.handle(message, context), {
            ...consumer.options,
            group: consumer.group,
          }),
        );
      }
    } catch (error) {
      await Promise.all(started.map((subscription) => subscription.close()));
      throw error;
    }
    this.subscriptions = started;
  }
}
