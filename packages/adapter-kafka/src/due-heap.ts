/** Something that becomes due at `due` (epoch ms); `seq` breaks ties in arrival order. */
export interface Due {
  due: number;
  readonly seq: number;
}

function before(a: Due, b: Due): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/**
 * A binary min-heap by due time. The delay mover holds up to `delayReadAhead` messages per
 * partition in it, so a message read later with a shorter delay is moved before an earlier one.
 */
export class DueHeap<T extends Due> {
  private items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(item, items[parent]!)) break;
      items[index] = items[parent]!;
      index = parent;
    }
    items[index] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    this.siftDown(0, last);
    return top;
  }

  /** Keeps only the items `keep` accepts (a partition lost in a rebalance drops its own). */
  retain(keep: (item: T) => boolean): void {
    this.items = this.items.filter(keep);
    for (let index = (this.items.length >> 1) - 1; index >= 0; index--) {
      this.siftDown(index, this.items[index]!);
    }
  }

  clear(): void {
    this.items = [];
  }

  private siftDown(start: number, item: T): void {
    const items = this.items;
    const length = items.length;
    let index = start;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      if (child + 1 < length && before(items[child + 1]!, items[child]!)) child++;
      if (!before(items[child]!, item)) break;
      items[index] = items[child]!;
      index = child;
    }
    items[index] = item;
  }
}
