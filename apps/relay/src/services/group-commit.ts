// Group commit: items submitted while a write is in flight are gathered and written together in
// the next write, so under load one database round trip (and one commit) serves many requests,
// and an idle relay still writes each item at once. Each submitter gets its own item's result.
//
// With `minIntervalMs`, a write starts no sooner than that long after the previous one started:
// items that arrive in between wait and go together. An item that finds the writer idle for
// longer than the interval is still written at once, so the interval only costs latency under
// load, where it buys larger batches, fewer commits and less CPU per item (each write has a
// fixed cost in the client and in Postgres, whatever its size).
//
// An item nobody waits on may ride (`rideMs`): it starts no write of its own before that long,
// but goes with any write that starts sooner, so such items mostly travel in the writes others
// start, and the rest together.
import { performance } from "node:perf_hooks";

export interface GroupCommitOptions {
  /** Most items in one write. */
  maxBatch: number;
  /** Most writes in flight at once. */
  maxInFlight: number;
  /** Least time between the starts of two writes, ms (default 0: none). */
  minIntervalMs?: number;
  /** Told each write's item count (metrics). */
  onBatch?: (size: number) => void;
  /** Told each write's duration in ms, from its start to its items' results (metrics). */
  onWritten?: (ms: number) => void;
  /**
   * Whether a failed write's error says nothing about any one item (the database is down,
   * stalled or overloaded): then every item of the write gets it at once. Otherwise (default)
   * the items are written again one by one, so one bad item does not fail the others; during
   * a stall that would wait out the database's timeout once per item.
   */
  failsAll?: (err: unknown) => boolean;
}

interface Waiting<I, O> {
  item: I;
  /** When the item needs a write at the latest (performance.now() time; riders only). */
  due?: number;
  resolve(out: O): void;
  reject(err: unknown): void;
}

export class GroupCommit<I, O> {
  private queue: Waiting<I, O>[] = [];
  /** Queued items that do not ride: any of them wants a write as soon as the interval allows. */
  private urgent = 0;
  private inFlight = 0;
  /** The pending start: a timer (at `timerAt`) or an immediate. */
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Number.POSITIVE_INFINITY;
  private immediate = false;
  private lastStart = Number.NEGATIVE_INFINITY;

  /** `write` returns one result per item, in the items' order. */
  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly opts: GroupCommitOptions,
  ) {}

  /**
   * Queues an item for the next write; resolves with its result. With `rideMs`, the item starts
   * no write before that long but goes with any write that starts sooner.
   */
  submit(item: I, opts: { rideMs?: number } = {}): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      if (opts.rideMs !== undefined && opts.rideMs > 0) {
        this.queue.push({ item, due: performance.now() + opts.rideMs, resolve, reject });
      } else {
        this.queue.push({ item, resolve, reject });
        this.urgent += 1;
      }
      this.schedule();
    });
  }

  /** Items waiting for a write (for metrics and tests). */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.immediate || this.queue.length === 0) return;
    const at = this.earliestStart();
    if (this.timer) {
      // Already set for as soon or sooner (a rider's due time may be later than an urgent item's).
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
      this.timer = null;
    }
    const wait = at - performance.now();
    if (wait <= 0) {
      // Let the requests already parsed in this turn of the event loop join the batch.
      this.immediate = true;
      setImmediate(() => {
        this.immediate = false;
        this.pump();
      });
      return;
    }
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.pump();
    }, Math.ceil(wait));
  }

  /** When the next write may start (performance.now() time): riders alone wait until due. */
  private earliestStart(): number {
    const interval = this.lastStart + (this.opts.minIntervalMs ?? 0);
    if (this.urgent > 0) return interval;
    // Only riders are queued: every item has a due time.
    let due = Number.POSITIVE_INFINITY;
    for (const w of this.queue) due = Math.min(due, w.due!);
    return Math.max(interval, due);
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.opts.maxInFlight) {
      const now = performance.now();
      if (now < this.earliestStart()) {
        this.schedule();
        return;
      }
      this.lastStart = now;
      const batch = this.queue.splice(0, this.opts.maxBatch);
      for (const w of batch) if (w.due === undefined) this.urgent -= 1;
      this.opts.onBatch?.(batch.length);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.opts.onWritten?.(performance.now() - now);
        this.inFlight--;
        if (this.queue.length > 0) this.schedule();
      });
    }
  }

  private async run(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const out = await this.write(batch.map((w) => w.item));
      if (out.length !== batch.length) {
        throw new Error(`group write returned ${out.length} results for ${batch.length} items`);
      }
      for (const [i, w] of batch.entries()) w.resolve(out[i]!);
    } catch (err) {
      if (batch.length === 1 || this.opts.failsAll?.(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      // One bad item (or a lock conflict) must not fail the others: write each alone, one after
      // another, so the writes in flight stay within bounds and items keep their order.
      for (const w of batch) await this.run([w]);
    }
  }
}

/**
 * Group commit over `lanes` independent writers, one write in flight each, with every item
 * routed by `laneOf` (a stable key, e.g. the prover): items that would contend for the same
 * database locks always share a lane, so writes in flight at once never wait on each other's
 * locks and all of them make progress in parallel.
 */
export class LanedGroupCommit<I, O> {
  private readonly lanes: GroupCommit<I, O>[];

  constructor(
    write: (items: I[]) => Promise<O[]>,
    private readonly laneOf: (item: I) => string,
    opts: Omit<GroupCommitOptions, "maxInFlight"> & { lanes: number },
  ) {
    const laneOpts = {
      maxBatch: opts.maxBatch,
      maxInFlight: 1,
      minIntervalMs: opts.minIntervalMs,
      onBatch: opts.onBatch,
      onWritten: opts.onWritten,
      failsAll: opts.failsAll,
    };
    this.lanes = Array.from({ length: opts.lanes }, () => new GroupCommit(write, laneOpts));
  }

  submit(item: I): Promise<O> {
    return this.lanes[laneIndex(this.laneOf(item), this.lanes.length)]!.submit(item);
  }

  /** Items waiting for a write, over all lanes. */
  get waiting(): number {
    return this.lanes.reduce((n, lane) => n + lane.waiting, 0);
  }
}

/** FNV-1a of the key, reduced to a lane: stable for a key, spread evenly over the lanes. */
export function laneIndex(key: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % lanes;
}
