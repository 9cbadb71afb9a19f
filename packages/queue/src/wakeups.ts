// Waking long-polling lessees. Most announcements say "one job of block B, queue K, may have
// become ready" (a parent whose last child was proven, a released or lapsed job). Waking every
// waiting lessee for each of them makes hundreds of idle workers race for one job: one wins and
// the rest each pay a full lease attempt (several Redis round trips) for nothing, which at a few
// hundred workers is most of the relay's work. So such a hint wakes one waiter that could take
// the job (its queue kinds and eligible blocks), the one waiting longest. Announcements without
// a hint (a new tree, the set of active blocks changed, holds ended) still wake everyone.
//
// Two gaps are closed so no job sleeps until a waiter's poll slice ends:
//  - A hint that arrives while no waiter matches (everyone busy, or between two attempts) is
//    kept for a while; a lessee that starts waiting after an attempt that began before the hint
//    picks it up at once. Hints older than the attempt are dropped instead: the attempt saw the
//    queues after that job was ready, so whoever may have it already had the chance.
//  - A woken lessee that took nothing but passed over jobs it may not have (a bar on a job it
//    kept failing, a parent held for another worker, a root type it did not declare) hands the
//    hint to the next waiter, never back to itself.
import type { EventEmitter } from "node:events";
import type { QueueKind } from "./catalog.ts";

/**
 * What may have become ready: one job of this block's queue (`by`: the lessee that gave it back,
 * not to be woken for it), or (null) anything at all.
 */
export type WorkHint = { blockNumber: number; kind: QueueKind; by?: string } | null;

/** What a waiting lessee could take. */
export interface WaitScope {
  /** Who waits (a worker session): a hint it passed on is not given back to it. */
  id: string;
  kinds: readonly QueueKind[];
  /** The blocks its last attempt looked at. */
  blocks: ReadonlySet<number>;
}

/** A hint as it travels between waiters: who already tried it. */
export interface Wake {
  blockNumber: number;
  kind: QueueKind;
  triedBy: Set<string>;
  seq: number;
}

interface Waiter {
  scope: WaitScope;
  wake(w: Wake | null): void;
}

/** How long an unclaimed hint is kept, and how many at most. */
export const PENDING_HINT_MS = 2_000;
const PENDING_HINT_MAX = 4_096;

const matches = (scope: WaitScope, w: Wake) =>
  scope.kinds.includes(w.kind) && scope.blocks.has(w.blockNumber) && !w.triedBy.has(scope.id);

export class LesseeWakeups {
  private timedOut = 0;
  private readonly waiting: Waiter[] = [];
  private pending: { wake: Wake; at: number }[] = [];
  private seq = 0;
  private lastWakeAll = 0;

  constructor(
    events: EventEmitter,
    private readonly now: () => number = Date.now,
  ) {
    events.on("work", (hint: WorkHint | undefined) => {
      if (!hint) return this.wakeAll();
      const { blockNumber, kind, by } = hint;
      this.offer({ blockNumber, kind, triedBy: new Set(by ? [by] : []), seq: ++this.seq });
    });
  }

  /** Where an attempt starts: announcements after this mark are not missed by wait(). */
  mark(): number {
    return this.seq;
  }

  /** Waits that slept until their time ran out, woken by nothing (diagnostics and tests). */
  get timeouts(): number {
    return this.timedOut;
  }

  /** Waiting lessees (for metrics and tests). */
  get size(): number {
    return this.waiting.length;
  }

  /**
   * Waits until a hint this scope matches, a wake-all, `ms`, or the signal. `since` is the mark
   * taken before the attempt that found nothing. Resolves with the hint that woke it (to pass
   * on if unused), or null.
   */
  wait(scope: WaitScope, since: number, ms: number, signal?: AbortSignal): Promise<Wake | null> {
    if (this.lastWakeAll > since || signal?.aborted) return Promise.resolve(null);
    this.dropExpired();
    const kept: { wake: Wake; at: number }[] = [];
    let found: Wake | null = null;
    for (const entry of this.pending) {
      if (found || !matches(scope, entry.wake)) kept.push(entry);
      // Announced before the attempt began: the attempt already saw that job's queue.
      else if (entry.wake.seq > since) found = entry.wake;
    }
    this.pending = kept;
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        scope,
        wake: (w) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve(w);
        },
      };
      const onAbort = () => {
        this.remove(waiter);
        waiter.wake(null);
      };
      const timer = setTimeout(() => {
        this.timedOut += 1;
        onAbort();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** A woken lessee could not use its hint for itself: the next matching waiter gets it. */
  passOn(wake: Wake, by: string): void {
    wake.triedBy.add(by);
    this.offer(wake);
  }

  private offer(wake: Wake): void {
    const i = this.waiting.findIndex((w) => matches(w.scope, wake));
    if (i >= 0) {
      const [waiter] = this.waiting.splice(i, 1);
      waiter!.wake(wake);
      return;
    }
    this.dropExpired();
    this.pending.push({ wake, at: this.now() });
    if (this.pending.length > PENDING_HINT_MAX) this.pending.shift();
  }

  private wakeAll(): void {
    this.lastWakeAll = ++this.seq;
    this.pending = [];
    for (const waiter of this.waiting.splice(0)) waiter.wake(null);
  }

  private remove(waiter: Waiter): void {
    const i = this.waiting.indexOf(waiter);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  private dropExpired(): void {
    const cutoff = this.now() - PENDING_HINT_MS;
    while (this.pending.length > 0 && this.pending[0]!.at < cutoff) this.pending.shift();
  }
}
