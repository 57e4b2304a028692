/**
 * Samples this process's resident set size on a timer, so a flood scenario can report its peak
 * (the figure that shows whether a driver buffers without bound).
 */
export class RssSampler {
  readonly baseline: number;
  peak: number;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(intervalMs = 25) {
    // A collection first (when node runs with --expose-gc) so the baseline is not yesterday's garbage.
    (globalThis as { gc?: () => void }).gc?.();
    this.baseline = process.memoryUsage.rss();
    this.peak = this.baseline;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
  }

  stop(): { peakMiB: number; growthMiB: number } {
    clearInterval(this.timer);
    this.sample();
    return { peakMiB: this.peak / 2 ** 20, growthMiB: (this.peak - this.baseline) / 2 ** 20 };
  }
}
