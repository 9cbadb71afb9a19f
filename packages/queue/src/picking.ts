// Choosing a job of one block for one lessee. BullMQ can only pop a queue's head, so choices are
// made at the head: a job the lessee is barred from (it failed it too often) is popped, set aside
// for the moment and put back; a job the lessee is preferred for (subtree affinity, affinity.ts)
// is first moved to the head of its priority band with BullMQ's own changePriority (lifo).
import type { Job, Queue, Worker } from "bullmq";
import type { BarsAt } from "./attempts.ts";
import { reserveSlotLua } from "./broker/records.ts";
import type { ProofJobData, QueueKind } from "./catalog.ts";
import { evalScript, type Redis } from "./redis.ts";
import { words } from "./word-lists.ts";

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
 * What one queue holds for a lessee with bars or preferences: the first PICK_DEPTH ready ids, so
 * barred ones can be passed over, and the priority of the first it may have. BullMQ pops its
 * wait list, where a job whose lease lapsed goes back, before the prioritized set, so that list
 * is read first.
 */
export async function peekQueue(
  queue: Queue<ProofJobData>,
  barred: ReadonlySet<string>,
  wantIds: boolean,
): Promise<QueuePeek> {
  // In the order BullMQ hands them out: the wait list's, then the prioritized set's.
  const ready = await queue.getRanges(["wait", "prioritized"], 0, PICK_DEPTH - 1, true);
  const ids = ready.filter((id) => !barred.has(id)).slice(0, PICK_DEPTH);
  const head = ids[0] === undefined ? undefined : await queue.getJob(ids[0]);
  return { priority: currentPriority(head), ids: wantIds ? ids : [] };
}

// The next job each queue would hand out and its current priority, for several queues in one
// round trip, optionally the jobs a lessee is not offered (its bars and live cool-downs), and
// optionally a capacity slot reserved when any queue has a job (SlotClaim).
// KEYS: per queue its wait list and prioritized set (BullMQ's keys), then optionally the bars'
// hash and the cool-down set, then optionally the session's slot set; ARGV: the number of
// queues, per queue its job key prefix, then optionally the bars' field, the worker, now and the
// operator's bars' field, then optionally the slot's capacity, placeholder and hold ms. BullMQ
// pops the wait list's right end first (a job whose lease lapsed goes back there), then the
// lowest-scored prioritized job. An empty queue gives {'', ''}; then the lessee's barred job
// ids, space-separated ('' when not asked); then the slot: '1' reserved, '0' full, '' not tried.
const peekHeadsScript = `
local n = tonumber(ARGV[1])
local extra = #KEYS - 2 * n
local out = {}
for i = 1, n do
  local wait, prioritized = KEYS[2 * i - 1], KEYS[2 * i]
  local id = redis.call('LINDEX', wait, -1)
  if id and string.sub(id, 1, 2) == '0:' then id = redis.call('LINDEX', wait, -2) end
  if not id then id = redis.call('ZRANGE', prioritized, 0, 0)[1] end
  if id then
    out[i] = {id, redis.call('HGET', ARGV[i + 1] .. id, 'priority') or '0'}
  else
    out[i] = {'', ''}
  end
end
local barred = ''
if extra >= 2 then
  barred = (redis.call('HGET', KEYS[2 * n + 1], ARGV[n + 2]) or '') .. ' ' ..
    (redis.call('HGET', KEYS[2 * n + 1], ARGV[n + 5]) or '')
  local mine = ARGV[n + 3] .. ' '
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2 * n + 2], '(' .. ARGV[n + 4], '+inf')) do
    if string.sub(m, 1, #mine) == mine then barred = barred .. ' ' .. string.sub(m, #mine + 1) end
  end
end
out[n + 1] = barred
out[n + 2] = ''
local any = false
for i = 1, n do
  if out[i][1] ~= '' then any = true end
end
if extra % 2 == 1 and any then
  ${reserveSlotLua("KEYS[#KEYS]", "ARGV[#ARGV - 2]", "ARGV[#ARGV - 1]", "ARGV[#ARGV]")}
  out[n + 2] = tostring(reserved)
end
return out`;

/**
 * A capacity slot the lessee must hold before a job is popped for it (the broker's). The peek
 * reserves it in its own round trip when it finds a job in reach (`at`, while not yet held);
 * `take` reserves it otherwise, and throws when the lessee is full.
 */
export interface SlotClaim {
  /** Where the peek may reserve it: undefined once held or refused. */
  readonly at: { key: string; capacity: number; member: string; holdMs: number } | undefined;
  /** The peek's reservation: true reserved, false full. */
  peeked(reserved: boolean): void;
  /** Holds the slot before a pop: a no-op when held, throws when full. */
  take(): Promise<void>;
}

/**
 * Priority of the job each queue would hand out next (Infinity: empty), and the lessee's bars
 * when `bars` says where they are, in one round trip.
 */
export async function peekHeads(
  redis: Redis,
  queues: readonly Queue<ProofJobData>[],
  bars?: BarsAt,
  slot?: SlotClaim,
): Promise<{ priorities: number[]; barred: Set<string> }> {
  const keys = queues.flatMap((q) => [q.keys.wait!, q.keys.prioritized!]);
  const prefixes = queues.map((q) => q.toKey(""));
  const at = slot?.at;
  const out = (await evalScript(
    redis,
    peekHeadsScript,
    keys.length + (bars ? 2 : 0) + (at ? 1 : 0),
    ...keys,
    ...(bars ? [bars.key, bars.coolKey] : []),
    ...(at ? [at.key] : []),
    queues.length,
    ...prefixes,
    ...(bars ? [bars.field, bars.worker, bars.nowMs, bars.operatorField] : []),
    ...(at ? [at.capacity, at.member, at.holdMs] : []),
  )) as unknown[];
  const heads = out.slice(0, queues.length) as [string, string][];
  const reserved = out[queues.length + 1];
  if (slot && (reserved === "1" || reserved === "0")) slot.peeked(reserved === "1");
  return {
    priorities: heads.map(([id, p]) => (id === "" ? Number.POSITIVE_INFINITY : Number(p))),
    barred: new Set(words(out[queues.length] as string)),
  };
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
  redis: Redis;
  queue(kind: QueueKind): Queue<ProofJobData>;
  fetcher(kind: QueueKind): Worker<ProofJobData>;
  /** Jobs of this block the lessee is barred from. */
  barred: ReadonlySet<string>;
  /** Subtree affinity: given the sorted heads, take a preferred job first (or null). */
  prefer?: (heads: readonly Head[]) => Promise<Taken | null>;
  /**
   * Held before anything is popped, once the peek found a job in reach (with `prefer`: always);
   * its `take` may throw to take nothing. A look that finds nothing reserves no slot.
   */
  slot?: SlotClaim;
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
  /** The queues' head priorities, if just read (peekHeads), for the simple case. */
  peeked?: readonly number[],
): Promise<Taken | null> {
  const simple = ctx.barred.size === 0 && !ctx.prefer;
  const heads: Head[] = simple
    ? (
        peeked ?? (await peekHeads(ctx.redis, kinds.map(ctx.queue), undefined, ctx.slot)).priorities
      ).map((priority, i) => ({
        kind: kinds[i]!,
        priority,
        ids: [],
      }))
    : await Promise.all(
        kinds.map(async (kind) => ({
          kind,
          ...(await peekQueue(ctx.queue(kind), ctx.barred, ctx.prefer !== undefined)),
        })),
      );
  // Most urgent head first; the rest in catalog order as a fallback (a head may be taken by
  // another relay between the peek and the fetch).
  heads.sort((a, b) => a.priority - b.priority);
  const inReach = (heads[0]?.priority ?? Number.POSITIVE_INFINITY) !== Number.POSITIVE_INFINITY;
  if (ctx.prefer || inReach) await ctx.slot?.take();
  const preferred = await ctx.prefer?.(heads);
  if (preferred) return preferred;
  for (const { kind, priority } of heads) {
    // Queues with nothing the lessee may have in reach are not popped. A job that becomes ready
    // after the peek is announced, and the announcement wakes a waiting lessee (wakeups.ts).
    if (priority === Number.POSITIVE_INFINITY) continue;
    const job = await popOfferable(ctx.fetcher(kind), token, ctx.barred);
    if (job) return { job, kind };
  }
  return null;
}
