// A process's own event-loop delay, from perf_hooks.monitorEventLoopDelay, less the sampling
// interval: the histogram records each whole interval between its timer's runs, so a loop that is
// never late reads as the resolution (p50 10 ms at a 10 ms resolution), not as 0.
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";

export class LoopDelay {
  private readonly histogram: IntervalHistogram;

  constructor(private readonly resolutionMs: number) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
  }

  /** How late the loop ran (ms): p50, p99 and the worst, since start or the last reset. */
  read(): { p50: number; p99: number; max: number } {
    const late = (ns: number) => Math.max(0, ns / 1e6 - this.resolutionMs);
    return {
      p50: late(this.histogram.percentile(50)),
      p99: late(this.histogram.percentile(99)),
      max: late(this.histogram.max),
    };
  }

  reset(): void {
    this.histogram.reset();
  }

  stop(): void {
    this.histogram.disable();
  }
}
