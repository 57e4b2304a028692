import { Deque } from './deque.js';

const LEVELS = 10;

/** FIFO per priority level 0–9, highest first; messages without a priority are level 0. */
export class PriorityBuffer<T extends { readonly priority?: number }> {
  private readonly levels: Deque<T>[] = [];
  private top = -1;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    this.level(item.priority ?? 0).push(item);
  }

  /** Back to the front of its level: a released message is the next one out. */
  unshift(item: T): void {
    this.level(item.priority ?? 0).unshift(item);
  }

  shift(): T | undefined {
    while (this.top >= 0) {
      const item = this.levels[this.top]?.shift();
      if (item !== undefined) {
        this.count--;
        return item;
      }
      this.top--;
    }
    return undefined;
  }

  /** In delivery order (highest priority first, FIFO within a level), without taking anything. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let index = this.top; index >= 0; index--) {
      const deque = this.levels[index];
      if (deque) yield* deque;
    }
  }

  clear(): void {
    this.levels.length = 0;
    this.top = -1;
    this.count = 0;
  }

  private level(priority: number): Deque<T> {
    const index = Math.min(LEVELS - 1, Math.max(0, priority));
    this.count++;
    if (index > this.top) this.top = index;
    let deque = this.levels[index];
    if (!deque) {
      deque = new Deque<T>();
      this.levels[index] = deque;
    }
    return deque;
  }
}
