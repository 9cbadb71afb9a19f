// Subtree-affinity scheduling. A worker that proved a child of a node holds that child's proof,
// so giving it the node saves moving one proof. Two mechanisms, both bounded:
//  - Preference: when a worker asks, a ready job it proved a child of goes first, if it is as
//    urgent as the most urgent job the worker could otherwise take from that block. Only equally
//    urgent jobs are passed over: never one nearer the root.
//  - Hold: when a worker's proof makes a parent ready, the worker has to come back with a new
//    lease request, and by then another worker would usually have taken the parent. So for up to
//    AFFINITY_HOLD_MS the parent is reserved for the workers that proved its children: others
//    are not offered it (they take other work, or wait). The first request of one of those
//    workers ends the hold, whatever it takes; so does the time running out. While held, the
//    parent is also demoted in its queue (by HOLD_DEMOTION, with BullMQ's changePriority), so
//    it sits behind every other ready job and nobody has to pop it to get past it; when the hold
//    ends it gets its own priority back, at the front of its band (it was ready before the rest).
//    The cost: a held parent nearer the root may wait while other workers take deeper jobs, for
//    at most AFFINITY_HOLD_MS and usually for one round trip of the worker it waits for.
import type { Job, Queue, Worker } from "bullmq";
import type { AttemptBook } from "./attempts.ts";
import { type ProofJobData, parentQueueOf, type QueueKind } from "./catalog.ts";
import {
  currentPriority,
  type Head,
  type PopCount,
  peekHeads,
  popNoted,
  type SlotClaim,
  type Taken,
  takeJob,
} from "./picking.ts";
import type { ProvenanceBook } from "./provenance.ts";
import type { Redis } from "./redis.ts";

/** Added to a held parent's priority (BullMQ priorities stop at 2^21 - 1; levels are small). */
export const HOLD_DEMOTION = 1_000_000;

/** Who is asking for a job, when the fabric should pick for them (see ProofFabric.take). */
export interface Lessee {
  /** The worker across sessions and relays: lesseeKey(operator, workerName). */
  worker: string;
  /** Its operator (lower case): bars on the operator hold for every worker id of it. */
  operator?: string;
  /** Subtree affinity: prefer a ready job this worker proved a child of. */
  affinity: boolean;
  /** The relay's clock, for holds. */
  nowMs: number;
}

/** Subtree affinity, on completing a job: who proved it, and how long its parent waits. */
export interface AffinityNote {
  worker: string;
  /** The relay's clock now. */
  nowMs: number;
  /** If this completion makes the parent ready, it waits this long for its children's provers. */
  holdMs?: number;
}

/** One block's queues and the books kept beside them (ProofFabric provides them). */
export interface BlockSource {
  blockNumber: number;
  redis: Redis;
  queue(kind: QueueKind): Queue<ProofJobData>;
  fetcher(kind: QueueKind): Worker<ProofJobData>;
  attempts: AttemptBook;
  provenance: ProvenanceBook;
  /** Wakes every relay's waiting lessees (held parents became available to all). */
  announce(): Promise<void>;
  /** Where this process counts its pops' outcomes. */
  pops: PopCount;
}

/**
 * What a lease attempt on one block came to: the job taken, if any, and whether jobs the lessee
 * may not have (bars, parents held for others) were passed over, which others may still take.
 */
export interface TakeOutcome {
  taken: Taken | null;
  passedOver: boolean;
}

/** Takes a job of one block for a lessee (or for nobody in particular), if one is ready. */
export async function takeForLessee(
  src: BlockSource,
  kinds: readonly QueueKind[],
  token: string,
  lessee?: Lessee,
  /** The capacity slot to hold before a pop (PickContext.slot). */
  slot?: SlotClaim,
): Promise<TakeOutcome> {
  const n = src.blockNumber;
  if (!lessee?.affinity) {
    // The queues' heads and the lessee's bars in one round trip; with bars, takeJob looks
    // deeper into the queues.
    const bars = lessee
      ? src.attempts.barsAt(n, lessee.worker, lessee.nowMs, lessee.operator)
      : undefined;
    const { ahead, barred } = await peekHeads(src.redis, kinds.map(src.queue), bars, slot);
    const peeked = barred.size === 0 ? ahead : undefined;
    return {
      taken: await takeJob({ ...src, barred, slot }, kinds, token, peeked),
      passedOver: barred.size > 0,
    };
  }
  const barred = await src.attempts.barred(n, lessee.worker, lessee.nowMs, lessee.operator);
  const { live, lapsed } = await src.provenance.holds(n, lessee.nowMs);
  await restore(src, lapsed);
  const heldForMe: string[] = [];
  for (const [id, provers] of live) {
    if (provers.includes(lessee.worker)) heldForMe.push(id);
    else barred.add(id);
  }
  const taken = await takeJob(
    {
      ...src,
      barred,
      slot,
      prefer: (heads) => takePreferred(src, heads, kinds, token, lessee.worker, heldForMe, barred),
    },
    kinds,
    token,
  );
  // This request ends the holds waiting for this worker, and a hold on whatever it took.
  const ended = new Set(heldForMe);
  if (taken && live.has(taken.job.id!)) ended.add(taken.job.id!);
  if (ended.size > 0) {
    await src.provenance.release(n, [...ended]);
    await restore(src, [...ended]);
    // Others waiting may have passed these parents over: they are everyone's now.
    if ([...ended].some((id) => id !== taken?.job.id)) await src.announce();
  }
  return { taken, passedOver: barred.size > 0 };
}

/**
 * Called just before a job is completed: records that `note.worker` proved a child of
 * `parentId`, and if this child is the parent's last unproven one, holds the parent for its
 * children's provers for `note.holdMs`; returns whether it did. The hold is set and the
 * parent demoted while it still waits for this child: BullMQ queues a parent at its stored
 * priority when its last child completes, so it becomes ready already held and demoted, with no
 * moment in which another worker could take it first. Should the completion be refused (lease
 * lost), the record names a worker that did not prove the child and the hold lapses unused;
 * both only ever skew a preference.
 */
export async function beforeChildCompletes(
  src: BlockSource,
  parentId: string,
  note: AffinityNote,
): Promise<boolean> {
  await src.provenance.record(src.blockNumber, parentId, note.worker);
  if (!note.holdMs) return false;
  const parent = await src.queue(parentQueueOf(parentId)).getJob(parentId);
  if (!parent) return false;
  const { unprocessed } = await parent.getDependenciesCount({ unprocessed: true });
  if (unprocessed !== 1) return false;
  await src.provenance.hold(src.blockNumber, parentId, note.nowMs + note.holdMs);
  await parent.changePriority({ priority: ownPriority(parent) + HOLD_DEMOTION });
  return true;
}

/**
 * Ends the block's holds whose time ran out unused and tells everyone: workers that passed those
 * parents over are waiting and would otherwise only look again at their next poll.
 */
export async function endLapsedHolds(src: BlockSource, nowMs: number) {
  const { lapsed } = await src.provenance.holds(src.blockNumber, nowMs);
  if (lapsed.length === 0) return;
  await restore(src, lapsed);
  await src.announce();
}

const ownPriority = (job: Job<ProofJobData>): number => job.opts.priority ?? 0;

/**
 * Gives parents whose hold ended their own priority back, at the front of their band. For a
 * parent already taken this only corrects the stored priority (BullMQ's changePriority on an
 * active job), so that it is queued right if it comes back.
 */
async function restore(src: BlockSource, parentIds: readonly string[]) {
  for (const id of parentIds) {
    const job = await src.queue(parentQueueOf(id)).getJob(id);
    if (job) await job.changePriority({ priority: ownPriority(job), lifo: true }).catch(() => {});
  }
}

/**
 * The preferred job, if any: first a parent held for this worker, then a ready job in the most
 * urgent band one of whose children this worker proved; either only if it is as urgent as the
 * most urgent job the worker could otherwise take from this block.
 */
async function takePreferred(
  src: BlockSource,
  heads: readonly Head[],
  kinds: readonly QueueKind[],
  token: string,
  worker: string,
  heldForMe: readonly string[],
  barred: ReadonlySet<string>,
): Promise<Taken | null> {
  const band = heads[0]?.priority ?? Number.POSITIVE_INFINITY;
  const candidates: { kind: QueueKind; id: string }[] = heldForMe
    .map((id) => ({ kind: parentQueueOf(id), id }))
    .filter((c) => kinds.includes(c.kind) && !barred.has(c.id));
  const inBand = heads.filter((h) => h.priority === band && band !== Number.POSITIVE_INFINITY);
  const provers = await src.provenance.proversOf(
    src.blockNumber,
    inBand.flatMap((h) => h.ids),
  );
  for (const h of inBand) {
    for (const id of h.ids)
      if (provers.get(id)?.includes(worker)) candidates.push({ kind: h.kind, id });
  }
  for (const { kind, id } of candidates) {
    const job = await src.queue(kind).getJob(id);
    if (!job || ownPriority(job) > band || !(await isReady(job))) continue;
    // Front of its own band (for a held parent, that is also back from its demotion).
    await job.changePriority({ priority: ownPriority(job), lifo: true });
    // Usually the promoted job; if another lessee got it first, the next one of that queue,
    // unless that one is less urgent than the band: then it goes back and priority decides.
    const keeps = (job: Job<ProofJobData>) => job.id === id || currentPriority(job) <= band;
    const taken = await popNoted(
      src.queue(kind),
      src.fetcher(kind),
      token,
      barred,
      src.pops,
      keeps,
    );
    if (taken) return { job: taken, kind };
  }
  return null;
}

async function isReady(job: Job<ProofJobData>): Promise<boolean> {
  const state = await job.getState();
  return state === "prioritized" || state === "waiting";
}
