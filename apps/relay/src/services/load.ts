// How far behind the relay is, and what it owes to requests that came while it was behind.
//
// A relay that falls behind (its event loop busy, its CPU saturated) must not punish the workers
// it failed to serve. Three pieces, wired in relay.ts:
// - LoopLag samples the event loop's own delay (a timer's lateness every SAMPLE_MS) and keeps
//   the last second of samples. When their mean (a sustained delay, not one long GC pause or
//   one large request) is above OVERLOAD_LAG_MS, the relay sheds load on new leases (503
//   UNAVAILABLE with Retry-After: half of them just over the limit, up to 95% at twice it, so
//   it keeps handing out some work); heartbeats, results and fails are never shed.
// - Arrivals stamps lease-holder requests (heartbeat, result, fail) the moment the relay reads
//   them, before authentication or any await, with the loop's recent delay: a heartbeat counts
//   from that arrival (less the delay that kept the relay from reading it sooner), not from
//   when the relay got round to it (broker.heartbeat revives a lock that ran out meanwhile).
// - sweepGate lets the lapse sweeper (fabric.ts) run only when the relay is on time: a sweep
//   whose own timer fired late is put off (the sockets may hold unread heartbeats), and a sweep
//   first waits until every stamped request that arrived before it has been answered. A sweep is
//   never put off for longer than LEASE_MS in a row, so withholding is still found under load.
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";

const SAMPLE_MS = 20;
const WINDOW_SAMPLES = 50; // one second of samples

export class LoopLag {
  private readonly samples = new Float64Array(WINDOW_SAMPLES);
  private next = 0;
  private recent = 0;
  private mean = 0;
  private lastAt = performance.now();
  private timer: NodeJS.Timeout | null = null;
  private forced: number | null = null;

  start(): void {
    if (this.timer) return;
    this.lastAt = performance.now();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private sample(): void {
    const now = performance.now();
    const late = Math.max(0, now - this.lastAt - SAMPLE_MS);
    this.lastAt = now;
    this.samples[this.next] = late;
    this.next = (this.next + 1) % WINDOW_SAMPLES;
    let max = 0;
    let sum = 0;
    for (const s of this.samples) {
      sum += s;
      if (s > max) max = s;
    }
    this.recent = max;
    this.mean = sum / WINDOW_SAMPLES;
  }

  /**
   * The loop's mean delay over the last second (ms), a delay still under way included: how far
   * behind the relay keeps being. A forced value wins (tests, drills).
   */
  behindMs(): number {
    if (this.forced !== null) return this.forced;
    const ongoing = Math.max(0, performance.now() - this.lastAt - SAMPLE_MS);
    return Math.max(this.mean, ongoing);
  }

  /**
   * The loop's worst delay over the last second (ms), counting a delay still under way (the
   * sampler not having run for longer than its period). A forced value wins (tests, drills).
   */
  recentMs(): number {
    if (this.forced !== null) return this.forced;
    const ongoing = Math.max(0, performance.now() - this.lastAt - SAMPLE_MS);
    return Math.max(this.recent, ongoing);
  }

  isForced(): boolean {
    return this.forced !== null;
  }

  /** Pretends the loop is `ms` behind (null: measure again). For tests and load drills. */
  force(ms: number | null): void {
    this.forced = ms;
  }
}

/** A stamped request: when the relay read it and how far behind the loop was then. */
export interface Arrival {
  seq: number;
  /** Date.now() when the relay read the request. */
  at: number;
  /** The loop's recent delay then: the request may have waited that long to be read. */
  lagMs: number;
}

/**
 * Lease-holder requests in flight, by arrival order. `drained()` resolves once every request
 * stamped before the call has been answered (or its connection closed). Emits "arrived"
 * (Arrival) synchronously as each is stamped.
 */
export class Arrivals extends EventEmitter {
  private seq = 0;
  private readonly pending = new Set<number>();
  private waiters: { upTo: number; resolve: () => void }[] = [];

  constructor(private readonly lag: LoopLag) {
    super();
  }

  stamp(): Arrival {
    const a: Arrival = { seq: ++this.seq, at: Date.now(), lagMs: this.lag.recentMs() };
    this.pending.add(a.seq);
    if (this.listenerCount("arrived") > 0) this.emit("arrived", a);
    return a;
  }

  done(a: Arrival): void {
    if (!this.pending.delete(a.seq) || this.waiters.length === 0) return;
    const oldest = this.oldestPending();
    this.waiters = this.waiters.filter((w) => {
      if (w.upTo < oldest) w.resolve();
      return w.upTo >= oldest;
    });
  }

  private oldestPending(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const s of this.pending) if (s < min) min = s;
    return min;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Resolves when every request stamped so far has been answered. */
  drained(): Promise<void> {
    const upTo = this.seq;
    if (this.oldestPending() > upTo) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ upTo, resolve }));
  }
}

/** How long ago (ms) a stamped request may have arrived: since its stamp, plus the loop's delay. */
export function arrivedAgoMs(a: Arrival | undefined): number {
  return a ? Date.now() - a.at + a.lagMs : 0;
}

/**
 * The lapse sweeper's gate (fabric.ts): put off a sweep whose timer fired more than `lateMs`
 * late, unless sweeps were put off for `maxDeferMs` already; otherwise wait for stamped requests
 * in flight to be answered, then sweep.
 */
export function sweepGateOf(arrivals: Arrivals, lateMs: number, maxDeferMs: number) {
  return async (tick: { lateMs: number; deferredMs: number }): Promise<boolean> => {
    if (tick.lateMs > lateMs && tick.deferredMs < maxDeferMs) return false;
    await arrivals.drained();
    return true;
  };
}
