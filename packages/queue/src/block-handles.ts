// The BullMQ handles a process holds on each block: up to three queues and three fetchers (a
// fetcher is a manual-fetching Worker with a stalled-check timer). Each queue is one Redis
// connection and each fetcher two, and a fetcher's stalled check runs a script every few hundred
// milliseconds for as long as it is open. So handles must not outlive their block: a process that
// kept them would add connections and idle Redis load with every block it ever touched, and its
// stalled checks would re-create the `meta` and `stalled-check` keys of queues already removed.
//
// Handles open lazily on first use, or ahead of it when a block is about to be proven (prepare:
// its first leases then find them connected), and close when their block stops being active
// (the caller passes the active set it just read: relays from their block registry, the
// aggregator when it retires a block). Closing only drops this process's handles; another
// process serving the same block keeps its own, and a block used again later simply reopens.
// Two rules keep this safe:
//  - a block used since the caller began reading its active set is kept (the read may predate
//    the block becoming active), and so is one used within `graceMs` before (a request still
//    finishing on it); a later sweep closes it;
//  - after closing, the crumbs a stalled check may have left of an already removed queue are
//    swept, but only when the queue holds nothing else (no jobs, no events): a live or merely
//    proven block's queue is never touched.
import type { Queue, Worker } from "bullmq";
import type { ProofJobData, QueueKind } from "./catalog.ts";
import { evalScript, luaScript, type Redis, scanKeys } from "./redis.ts";

export const blockKinds: readonly QueueKind[] = ["root", "merge", "base"];

interface OpenBlock {
  queues: Map<QueueKind, Queue<ProofJobData>>;
  fetchers: Map<QueueKind, Worker<ProofJobData>>;
  /**
   * performance.now() at the last handle handed out for this block (later, while a prepared
   * block not yet used is held: see prepare).
   */
  lastUse: number;
}

export interface BlockHandleFactory {
  queue(blockNumber: number, kind: QueueKind): Queue<ProofJobData>;
  fetcher(blockNumber: number, kind: QueueKind): Worker<ProofJobData>;
  /** The Redis key of one of a block queue's structures ("meta", "wait", ...). */
  key(blockNumber: number, kind: QueueKind, suffix: string): string;
}

// Deletes KEYS[1..2] (meta, stalled-check) when none of KEYS[3..] exist: what a stalled check
// leaves of a queue that was removed. Any job, job set or event keeps the queue as it is.
const sweepCrumbsScript = luaScript(`
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
return redis.call('DEL', KEYS[1], KEYS[2])`);

const liveKeys = [
  "wait",
  "paused",
  "prioritized",
  "active",
  "waiting-children",
  "delayed",
  "completed",
  "failed",
  "events",
] as const;

/**
 * Closes a queue or fetcher with QUIT, so that Redis has run every command it sent (a stalled
 * check in flight, a queue's meta write) before this resolves: a sweep that follows on another
 * connection then sees their effects. If Redis does not answer within `ms`, the connection is
 * dropped instead.
 */
async function closeGracefully(
  handle: { close(force?: boolean): Promise<void>; disconnect(): Promise<void> },
  ms = 5000,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
    timer.unref();
  });
  const closed = handle.close(false).then(
    () => false,
    () => false,
  );
  if (await Promise.race([closed, timedOut])) await handle.disconnect().catch(() => {});
  clearTimeout(timer);
}

export class BlockHandles {
  private readonly blocks = new Map<number, OpenBlock>();
  /** Set by closeAll: the process is stopping. */
  private closed = false;
  /** Blocks being closed: a second close waits for the first. */
  private readonly closing = new Map<number, Promise<void>>();

  constructor(
    private readonly factory: BlockHandleFactory,
    private readonly redis: Redis,
    /** How long after its last use a block's handles are kept even if it is inactive. */
    private readonly graceMs = 2000,
  ) {}

  private block(blockNumber: number): OpenBlock {
    let b = this.blocks.get(blockNumber);
    if (!b) {
      b = { queues: new Map(), fetchers: new Map(), lastUse: 0 };
      this.blocks.set(blockNumber, b);
    }
    b.lastUse = performance.now();
    return b;
  }

  queue(blockNumber: number, kind: QueueKind): Queue<ProofJobData> {
    const b = this.block(blockNumber);
    let q = b.queues.get(kind);
    if (!q) {
      q = this.factory.queue(blockNumber, kind);
      b.queues.set(kind, q);
    }
    return q;
  }

  fetcher(blockNumber: number, kind: QueueKind): Worker<ProofJobData> {
    const b = this.block(blockNumber);
    let w = b.fetchers.get(kind);
    if (!w) {
      w = this.factory.fetcher(blockNumber, kind);
      b.fetchers.set(kind, w);
    }
    return w;
  }

  /**
   * Opens a block's queues and fetchers of `kinds` ahead of their first use (a block about to be
   * proven), and keeps them for `holdMs` (or until that first use, after which the usual rules
   * apply) even if the block is not yet active: a block whose proving never starts is closed by
   * a later sweep. Resolves once every handle is connected; opens nothing once closeAll ran.
   */
  async prepare(blockNumber: number, kinds: readonly QueueKind[], holdMs: number): Promise<void> {
    if (this.closed) return;
    const handles = kinds.flatMap((kind) => [
      this.queue(blockNumber, kind),
      this.fetcher(blockNumber, kind),
    ]);
    const b = this.block(blockNumber);
    b.lastUse = Math.max(b.lastUse, performance.now() + holdMs);
    await Promise.all(handles.map((h) => h.waitUntilReady()));
  }

  /** A block's fetcher of one kind if this process holds it open (never opens one). */
  openFetcher(blockNumber: number, kind: QueueKind): Worker<ProofJobData> | undefined {
    const w = this.blocks.get(blockNumber)?.fetchers.get(kind);
    return w && !w.closing ? w : undefined;
  }

  /** Blocks this process holds handles on. */
  openBlocks(): number[] {
    return [...this.blocks.keys()];
  }

  /** Handles held: queues and fetchers, over every open block. */
  counts(): { blocks: number; queues: number; fetchers: number } {
    let queues = 0;
    let fetchers = 0;
    for (const b of this.blocks.values()) {
      queues += b.queues.size;
      fetchers += b.fetchers.size;
    }
    return { blocks: this.blocks.size, queues, fetchers };
  }

  /**
   * Closes one block's handles. `remove(queue)`: runs on each of its queues (opened if need be)
   * after the fetchers are closed and before the queues are, to remove the block's data.
   * Without it, the crumbs of an already removed queue are swept (see the header).
   */
  async close(
    blockNumber: number,
    remove?: (queue: Queue<ProofJobData>) => Promise<void>,
  ): Promise<void> {
    const pending = this.closing.get(blockNumber);
    if (pending) await pending;
    const done = this.closeNow(blockNumber, remove).finally(() => {
      if (this.closing.get(blockNumber) === done) this.closing.delete(blockNumber);
    });
    this.closing.set(blockNumber, done);
    await done;
  }

  private async closeNow(
    blockNumber: number,
    remove?: (queue: Queue<ProofJobData>) => Promise<void>,
  ): Promise<void> {
    if (remove) for (const kind of blockKinds) this.queue(blockNumber, kind);
    const b = this.blocks.get(blockNumber);
    if (!b) return;
    this.blocks.delete(blockNumber);
    // Fetchers first: once closed, no stalled check runs on this block from this process.
    await Promise.allSettled([...b.fetchers.values()].map((w) => closeGracefully(w)));
    const queues = [...b.queues.values()];
    // One queue at a time, children's first (base, merge, root). BullMQ's obliterate leaves jobs
    // that wait for children alone, and removing a child moves its parent to wait: parents
    // first would leave them behind, and re-create their queue's wait list.
    if (remove) {
      for (const kind of [...blockKinds].reverse()) {
        const q = b.queues.get(kind);
        if (q) await remove(q).catch(() => {});
      }
    }
    await Promise.allSettled(queues.map((q) => closeGracefully(q)));
    // Only now: every command of the closed handles has run (see closeGracefully).
    if (!remove) await this.sweepCrumbs(blockNumber);
  }

  /** Deletes what stalled checks left of this block's queues, if they were removed. */
  private async sweepCrumbs(blockNumber: number): Promise<void> {
    await Promise.allSettled(
      blockKinds.map((kind) => {
        const keys = ["meta", "stalled-check", ...liveKeys].map((suffix) =>
          this.factory.key(blockNumber, kind, suffix),
        );
        return evalScript(this.redis, sweepCrumbsScript, keys.length, ...keys);
      }),
    );
  }

  /**
   * Closes the handles of blocks not in `active`, except those used at or after `readStartedAt`
   * (performance.now() when the caller began reading `active`) or within the grace before it.
   * Returns the blocks closed.
   */
  async closeInactive(active: ReadonlySet<number>, readStartedAt: number): Promise<number[]> {
    const closing: number[] = [];
    for (const [n, b] of this.blocks) {
      if (active.has(n) || b.lastUse >= readStartedAt - this.graceMs) continue;
      closing.push(n);
    }
    await Promise.allSettled(closing.map((n) => this.close(n)));
    return closing;
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    const blocks = [...this.blocks.values()];
    this.blocks.clear();
    await Promise.allSettled(
      blocks.flatMap((b) => [...b.fetchers.values()].map((w) => w.close(true))),
    );
    await Promise.allSettled(blocks.flatMap((b) => [...b.queues.values()].map((q) => q.close())));
  }
}

/** Blocks that have queues under `prefix` in Redis (a queue with jobs has a `meta` key). */
export async function blocksWithQueues(redis: Redis, prefix: string): Promise<number[]> {
  const found = new Set<number>();
  for (const key of await scanKeys(redis, `${prefix}:b*:meta`)) {
    const m = /:b(\d+)-(?:root|merge|base):meta$/.exec(key);
    if (m) found.add(Number(m[1]));
  }
  return [...found].sort((a, b) => a - b);
}
