interface Entry {
  readonly dueAt: number;
  readonly seq: number;
  readonly run: () => void;
}

/**
 * Delayed work on one timer: a binary min-heap by due time (then insertion order), so 100 000
 * pending delays cost one setTimeout, not 100 000.
 */
export class TimerHeap {
  private readonly heap: Entry[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;

  get size(): number {
    return this.heap.length;
  }

  schedule(delayMs: number, run: () => void): void {
    const entry = { dueAt: Date.now() + delayMs, seq: this.seq++, run };
    this.heap.push(entry);
    this.up(this.heap.length - 1);
    if (entry.dueAt < this.armedFor) this.arm();
  }

  clear(): number {
    const dropped = this.heap.length;
    this.heap.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    return dropped;
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    const first = this.heap[0];
    if (!first) {
      this.timer = undefined;
      this.armedFor = Number.POSITIVE_INFINITY;
      return;
    }
    this.armedFor = first.dueAt;
    this.timer = setTimeout(() => this.fire(), Math.max(0, first.dueAt - Date.now()));
  }

  private fire(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.heap.length > 0 && this.heap[0]!.dueAt <= now) this.pop().run();
    this.arm();
  }

  private pop(): Entry {
    const top = this.heap[0]!;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    return top;
  }

  private less(a: Entry, b: Entry): boolean {
    return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.seq < b.seq);
  }

  private up(index: number): void {
    const heap = this.heap;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.less(heap[index]!, heap[parent]!)) break;
      [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
      index = parent;
    }
  }

  private down(index: number): void {
    const heap = this.heap;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && this.less(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && this.less(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === index) return;
      [heap[index], heap[smallest]] = [heap[smallest]!, heap[index]!];
      index = smallest;
    }
  }
}
