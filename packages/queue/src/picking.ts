// Choosing a job of one block for one lessee. BullMQ can only pop a queue's head, so choices are
// made at the head: a job the lessee is barred from (it failed it too often) is popped, set aside
// for the moment and put back; a job the lessee is preferred for (subtree affinity, affinity.ts)
// is first moved to the head of its priority band with BullMQ's own changePriority (lifo).
import type { Job, Queue, Worker } from "bullmq";
import type { ProofJobData, QueueKind } from "./catalog.ts";

/** How far down a queue bars and preferences are looked for (ready jobs, in priority order). */
export const PICK_DEPTH = 16;

export type Taken = { job: Job<ProofJobData>; kind: QueueKind };

export interface QueuePeek {
  /** Priority of the most urgent job the lessee may be offered (Infinity: none in reach). */
  priority: number;
  /** Ready job ids the lessee may be offered, most urgent first (only when asked for). */
  ids: string[];
}

export type Head = { kind: QueueKind } & QueuePeek;

/**
 * The priority BullMQ orders a job by now: its own (opts.priority) unless changed since, as for
 * a parent held for affinity (demoted while held).
 */
export const currentPriority = (job: Job<ProofJobData> | undefined): number =>
  job ? Number(job.priority || job.opts.priority) : Number.POSITIVE_INFINITY;

/**
 * What one queue holds for a lessee. Without bars or preferences this is one peek at the head;
 * otherwise the first PICK_DEPTH ready ids are read so barred ones can be passed over.
 */
export async function peekQueue(
  queue: Queue<ProofJobData>,
  barred: ReadonlySet<string>,
  wantIds: boolean,
): Promise<QueuePeek> {
  if (barred.size === 0 && !wantIds) {
    const [head] = await queue.getPrioritized(0, 0);
    return { priority: currentPriority(head), ids: [] };
  }
  const ready = await queue.getRanges(["prioritized"], 0, PICK_DEPTH - 1, true);
  const ids = ready.filter((id) => !barred.has(id));
  const head = ids[0] === undefined ? undefined : await queue.getJob(ids[0]);
  return { priority: currentPriority(head), ids };
}

/**
 * Pops the most urgent job the lessee may have. Barred jobs popped on the way are put back at
 * the front of their priority band (BullMQ's moveToWait), without an announcement: they were
 * ready before this call, and announcing would wake the barred workers' own long polls into
 * popping them again at once, a busy loop.
 */
export async function popOfferable(
  fetcher: Worker<ProofJobData>,
  token: string,
  barred: ReadonlySet<string>,
): Promise<Job<ProofJobData> | undefined> {
  if (barred.size === 0) return fetcher.getNextJob(token, { block: false });
  const passed: Job<ProofJobData>[] = [];
  try {
    while (passed.length < PICK_DEPTH) {
      const job = await fetcher.getNextJob(token, { block: false });
      if (!job || !barred.has(job.id!)) return job;
      passed.push(job);
    }
    return undefined;
  } finally {
    await Promise.all(passed.map((job) => job.moveToWait(token).catch(() => {})));
  }
}

/** One block's queues as seen by one lessee. */
export interface PickContext {
  queue(kind: QueueKind): Queue<ProofJobData>;
  fetcher(kind: QueueKind): Worker<ProofJobData>;
  /** Jobs of this block the lessee is barred from. */
  barred: ReadonlySet<string>;
  /** Subtree affinity: given the sorted heads, take a preferred job first (or null). */
  prefer?: (heads: readonly Head[]) => Promise<Taken | null>;
}

/**
 * Takes the most urgent ready job of one block among the given kinds (queues), or null. Kinds
 * live in separate queues (so workers get only the types they declared) and BullMQ orders by
 * priority only within a queue, so the queues' heads are compared first: in an unbalanced tree a
 * base job can sit nearer the root than a ready merge.
 */
export async function takeJob(
  ctx: PickContext,
  kinds: readonly QueueKind[],
  token: string,
): Promise<Taken | null> {
  const heads: Head[] = await Promise.all(
    kinds.map(async (kind) => ({
      kind,
      ...(await peekQueue(ctx.queue(kind), ctx.barred, ctx.prefer !== undefined)),
    })),
  );
  // Most urgent head first; the rest in catalog order as a fallback (a head may be taken by
  // another relay between the peek and the fetch).
  heads.sort((a, b) => a.priority - b.priority);
  const preferred = await ctx.prefer?.(heads);
  if (preferred) return preferred;
  for (const { kind, priority } of heads) {
    // A barred lessee skips queues with nothing it may have in reach rather than pop them.
    if (ctx.barred.size > 0 && priority === Number.POSITIVE_INFINITY) continue;
    const job = await popOfferable(ctx.fetcher(kind), token, ctx.barred);
    if (job) return { job, kind };
  }
  return null;
}
