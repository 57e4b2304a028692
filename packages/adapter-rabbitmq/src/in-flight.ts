/** What the registry needs of a published item: its message id and a link to the next with that id. */
export interface Linked<T> {
  readonly id: string;
  sameId: T | undefined;
}

/**
 * Published, unconfirmed items by message id. Several items can share an id (a message published
 * twice at once); they are chained in publish order, because basic.return names only the message
 * id and must mark the oldest one not yet returned.
 */
export class InFlight<T extends Linked<T>> {
  private readonly heads = new Map<string, T>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(item: T): void {
    const head = this.heads.get(item.id);
    this.count++;
    if (!head) {
      this.heads.set(item.id, item);
      return;
    }
    let last = head;
    while (last.sameId) last = last.sameId;
    last.sameId = item;
  }

  /** The oldest item with `id` that `skip` does not exclude. */
  find(id: string, skip: (item: T) => boolean): T | undefined {
    let item = this.heads.get(id);
    while (item && skip(item)) item = item.sameId;
    return item;
  }

  /** Removes `item` if it is here (a no-op otherwise). */
  remove(item: T): void {
    const head = this.heads.get(item.id);
    if (head === item) {
      if (item.sameId) this.heads.set(item.id, item.sameId);
      else this.heads.delete(item.id);
      this.count--;
    } else if (head) {
      let previous = head;
      while (previous.sameId && previous.sameId !== item) previous = previous.sameId;
      if (previous.sameId === item) {
        previous.sameId = item.sameId;
        this.count--;
      }
    }
    item.sameId = undefined;
  }

  /** Empties the registry and returns what it held, oldest id first. */
  drain(): T[] {
    const items: T[] = [];
    for (const head of this.heads.values()) {
      let item: T | undefined = head;
      while (item) {
        const next: T | undefined = item.sameId;
        item.sameId = undefined;
        items.push(item);
        item = next;
      }
    }
    this.heads.clear();
    this.count = 0;
    return items;
  }
}
