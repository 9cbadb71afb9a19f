// Choosing a job of one block for one lessee. BullMQ can only pop a queue's head, so choices are
// made at the head: a job the lessee is barred from (it failed it too often) is popped, set aside
// for the moment and put back; a job the lessee is preferred for (subtree affinity, affinity.ts)
// is first moved to the head of its priority band with BullMQ's own changePriority (lifo).
import type { Job, Queue, Worker } from "bullmq";
import type { BarsAt } from "./attempts.ts";
import { reserveSlotLua } from "./broker/records.ts";
import type { ProofJobData, QueueKind } from "./catalog.ts";
import { evalScript, luaScript, type Redis } from "./redis.ts";
import { words } from "./word-lists.ts";

/** How far down a queue bars and preferences are looked for (ready jobs, in priority order). */
export const PICK_DEPTH = 16;

/**
 * How many of each queue's next jobs a peek reads: lessees of one process that peeked at the
 * same moment decide one after another, and each reads what the pops the others already sent
 * take (the pop log below) to know which job its own pop would bring (peekHeads, takeJob).
 */
export const PEEK_AHEAD = 8;

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

// The pops this process sent on each queue (BullMQ's moveToActive through a fetcher), by the
// queue's handle. A lessee notes where the log stood when its look went out and, when it
// decides, reads what the pops sent since then took (popNoted, nextPriority, allSeenTaken).
interface PopEntry {
  seq: number;
  /** Answered: `id` is the job it brought for its lessee (null: none), `putBack` whether it
   * put a job back in the queue unannounced (a barred job passed over, or one not kept). */
  done: boolean;
  id: string | null;
  putBack: boolean;
  /** Resolves once answered. */
  settled: Promise<void>;
}
interface PopLog {
  sent: number;
  /** The latest pops (at most POP_LOG), oldest first. */
  recent: PopEntry[];
}
const POP_LOG = 256;
const pops = new WeakMap<object, PopLog>();

/** Pops that came back, by outcome: with a job for the lessee, or empty (none left for it). */
export interface PopCount {
  job: number;
  empty: number;
}

/** Where a queue's pop log stood when a look went out (QueueAhead). */
interface PopMark {
  /** Pops sent before. */
  sent: number;
  /** Pops after this one are watched: those sent since, and those unanswered at the mark. */
  watchFrom: number;
}

function popMark(queue: object): PopMark {
  const log = pops.get(queue);
  if (!log) return { sent: 0, watchFrom: 0 };
  const open = log.recent.find((p) => !p.done);
  return { sent: log.sent, watchFrom: open ? open.seq - 1 : log.sent };
}

/** The logged pops of a queue after its `from`-th, or null when some are no longer logged. */
function popsAfter(queue: object, from: number): PopEntry[] | null {
  const log = pops.get(queue);
  if (!log) return [];
  let i = log.recent.length;
  while (i > 0 && log.recent[i - 1]!.seq > from) i--;
  const later = log.recent.slice(i);
  return later.length < log.sent - from ? null : later;
}

/**
 * Pops the most urgent job the lessee may have from `queue` (popPassing), logged for the
 * lessees deciding after it (the entry is made before any await) and counted in `count`. A job
 * `keeps` refuses goes back to the queue, unannounced (the lessee is given none).
 */
export function popNoted(
  queue: object,
  fetcher: Worker<ProofJobData>,
  token: string,
  barred: ReadonlySet<string>,
  count?: PopCount,
  keeps?: (job: Job<ProofJobData>) => boolean,
): Promise<Job<ProofJobData> | undefined> {
  let log = pops.get(queue);
  if (!log) {
    log = { sent: 0, recent: [] };
    pops.set(queue, log);
  }
  log.sent += 1;
  const popping = (async () => {
    const { job, passed } = await popPassing(fetcher, token, barred);
    if (!job || !keeps || keeps(job)) return { job, putBack: passed > 0 };
    await job.moveToWait(token).catch(() => {});
    return { job: undefined, putBack: true };
  })();
  const entry: PopEntry = {
    seq: log.sent,
    done: false,
    id: null,
    putBack: false,
    settled: popping
      .then(
        ({ job, putBack }) => {
          entry.id = job?.id ?? null;
          entry.putBack = putBack;
          if (count) {
            if (job) count.job += 1;
            else count.empty += 1;
          }
        },
        () => {},
      )
      .finally(() => {
        entry.done = true;
      }),
  };
  log.recent.push(entry);
  if (log.recent.length > POP_LOG) log.recent.splice(0, log.recent.length - POP_LOG);
  return popping.then(({ job }) => job);
}

// What each queue would hand out next, for several queues in one round trip, optionally the
// jobs a lessee is not offered (its bars and live cool-downs), and optionally a capacity slot
// reserved when any queue has a job (SlotClaim).
// KEYS: per queue its wait list and prioritized set (BullMQ's keys), then optionally the bars'
// hash and the cool-down set, then optionally the session's slot set; ARGV: the number of
// queues, per queue its job key prefix, then optionally the bars' field, the worker, now and the
// operator's bars' field, then optionally the slot's capacity, placeholder and hold ms. BullMQ
// pops the wait list's right end first (a job whose lease lapsed goes back there), then the
// lowest-scored prioritized job, whose score is its priority times 2^32 plus a counter. Per
// queue: its count of ready jobs, then the id and priority of each of its next PEEK_AHEAD jobs
// in that order; then the lessee's barred job ids, space-separated ('' when not asked); then the
// slot: '1' reserved, '0' full, '' not tried.
const peekHeadsScript = luaScript(`
local n = tonumber(ARGV[1])
local ahead = ${PEEK_AHEAD}
local extra = #KEYS - 2 * n
local out = {}
local any = false
for i = 1, n do
  local wait, prioritized = KEYS[2 * i - 1], KEYS[2 * i]
  local entry = {0}
  local ready = redis.call('LLEN', wait)
  local waiting = redis.call('LRANGE', wait, -ahead, -1)
  for j = #waiting, 1, -1 do
    local id = waiting[j]
    if string.sub(id, 1, 2) == '0:' then
      ready = ready - 1
    else
      entry[#entry + 1] = id
      entry[#entry + 1] = tonumber(redis.call('HGET', ARGV[i + 1] .. id, 'priority') or '0')
    end
  end
  ready = ready + redis.call('ZCARD', prioritized)
  local room = ahead - (#entry - 1) / 2
  if room > 0 then
    local scored = redis.call('ZRANGE', prioritized, 0, room - 1, 'WITHSCORES')
    for j = 1, #scored, 2 do
      entry[#entry + 1] = scored[j]
      entry[#entry + 1] = math.floor(tonumber(scored[j + 1]) / 4294967296)
    end
  end
  entry[1] = ready
  if #entry > 1 then any = true end
  out[i] = entry
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
if extra % 2 == 1 and any then
  ${reserveSlotLua("KEYS[#KEYS]", "ARGV[#ARGV - 2]", "ARGV[#ARGV - 1]", "ARGV[#ARGV]")}
  out[n + 2] = tostring(reserved)
end
return out`);

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

/** What a peek saw of one queue (peekHeads). */
export interface QueueAhead {
  /** Ready jobs in the queue. */
  ready: number;
  /** Ids of its next jobs (up to PEEK_AHEAD), in the order BullMQ hands them out. */
  ids: string[];
  /** Their priorities. */
  next: number[];
  /** Where this process's pop log of the queue stood when the look went out. */
  mark: PopMark;
}

/** Priority of the job the queue would hand out next as the look saw it (Infinity: empty). */
export const headPriority = (seen: QueueAhead): number => seen.next[0] ?? Number.POSITIVE_INFINITY;

/**
 * What each queue holds ahead (its head: headPriority), and the lessee's bars when `bars` says
 * where they are, in one round trip.
 */
export async function peekHeads(
  redis: Redis,
  queues: readonly Queue<ProofJobData>[],
  bars?: BarsAt,
  slot?: SlotClaim,
): Promise<{ ahead: QueueAhead[]; barred: Set<string> }> {
  const keys = queues.flatMap((q) => [q.keys.wait!, q.keys.prioritized!]);
  const prefixes = queues.map((q) => q.toKey(""));
  const at = slot?.at;
  const reply = evalScript(
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
  );
  // The look goes out with this turn's auto-pipelined batch, whose write the socket holds to
  // the end of this pass of the event loop (redis.ts, coalesceWrites), at setImmediate at the
  // earliest (later while an earlier batch waits for its replies): pops sent before then reach
  // Redis first, and the jobs they take are already missing from what it reads. Pops sent after
  // may still reach Redis first; nextPriority reads what those took.
  let before: PopMark[] | undefined;
  const goneOut = () => {
    before ??= queues.map(popMark);
  };
  setImmediate(goneOut);
  const out = (await reply) as unknown[];
  goneOut();
  const ahead = (out.slice(0, queues.length) as unknown[][]).map(([ready, ...pairs], i) => {
    const ids: string[] = [];
    const next: number[] = [];
    for (let j = 0; j + 1 < pairs.length; j += 2) {
      ids.push(String(pairs[j]));
      next.push(Number(pairs[j + 1]));
    }
    return { ready: Number(ready), ids, next, mark: before![i]! };
  });
  const reserved = out[queues.length + 1];
  if (slot && (reserved === "1" || reserved === "0")) slot.peeked(reserved === "1");
  return {
    ahead,
    barred: new Set(words(out[queues.length] as string)),
  };
}

/**
 * The priority of the job a pop on `queue` would bring now, as far as this process knows: the
 * look's first job not taken by the pops this process sent since the look went out (one still
 * unanswered is taken to take the next), Infinity when they may take every job the look saw.
 */
export function nextPriority(queue: object, seen: QueueAhead): number {
  const later = popsAfter(queue, seen.mark.sent);
  if (later?.length === 0) return headPriority(seen);
  const gone = new Set<string>();
  let open = later ? 0 : Number.POSITIVE_INFINITY;
  for (const p of later ?? []) {
    if (!p.done) open++;
    else if (p.id !== null) gone.add(p.id);
  }
  const left = seen.next.filter((_, i) => !gone.has(seen.ids[i]!));
  const readyLeft = seen.ready - (seen.next.length - left.length);
  if (open >= readyLeft) return Number.POSITIVE_INFINITY;
  return left[Math.min(open, left.length - 1)] ?? seen.next[seen.next.length - 1]!;
}

/**
 * Whether this process's pops on `queue` took every job the look saw there, so that another
 * pop would find nothing the look knew of (waits for the pops sent since the look and those
 * unanswered then). Not when one of them put a job back unannounced: it may be one the look
 * could not see, as it was out of the queue then. Jobs that became ready otherwise are
 * announced, and an announcement wakes a waiting lessee.
 */
export async function allSeenTaken(queue: object, seen: QueueAhead): Promise<boolean> {
  if (seen.ids.length < seen.ready) return false;
  const watched = popsAfter(queue, seen.mark.watchFrom);
  if (!watched) return false;
  await Promise.all(watched.map((p) => p.settled));
  if (watched.some((p) => p.putBack)) return false;
  const kept = new Set(watched.map((p) => p.id));
  return seen.ids.every((id) => kept.has(id));
}

/**
 * Pops the most urgent job the lessee may have. Barred jobs popped on the way are put back at
 * the front of their priority band (BullMQ's moveToWait), without an announcement: they were
 * ready before this call, and announcing would wake the barred workers' own long polls into
 * popping them again at once, a busy loop. `passed`: how many were put back.
 */
async function popPassing(
  fetcher: Worker<ProofJobData>,
  token: string,
  barred: ReadonlySet<string>,
): Promise<{ job: Job<ProofJobData> | undefined; passed: number }> {
  if (barred.size === 0)
    return { job: await fetcher.getNextJob(token, { block: false }), passed: 0 };
  const passed: Job<ProofJobData>[] = [];
  try {
    while (passed.length < PICK_DEPTH) {
      const job = await fetcher.getNextJob(token, { block: false });
      if (!job || !barred.has(job.id!)) return { job, passed: passed.length };
      passed.push(job);
    }
    return { job: undefined, passed: passed.length };
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
  /** Where this process counts its pops' outcomes (ProofFabric.pops). */
  pops?: PopCount;
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
  /** What each queue held, if just read (peekHeads), for the simple case. */
  peeked?: readonly QueueAhead[],
): Promise<Taken | null> {
  const simple = ctx.barred.size === 0 && !ctx.prefer;
  const ahead = simple
    ? (peeked ?? (await peekHeads(ctx.redis, kinds.map(ctx.queue), undefined, ctx.slot)).ahead)
    : undefined;
  const heads: Head[] = ahead
    ? ahead.map((seen, i) => ({
        kind: kinds[i]!,
        priority: headPriority(seen),
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
  // Lessees of this process that peeked at the same moment would all pop the queue of the one
  // most urgent job, and all but one find it gone. So, decided here with no await before the
  // first pop is counted, a queue ranks by the job its pop would bring after the pops other
  // lessees already sent; a queue whose peeked jobs those pops take all comes last.
  const order: { kind: QueueKind; priority: number; seen?: QueueAhead; next?: number }[] = ahead
    ? heads
        .map(({ kind, priority }) => {
          const seen = ahead[kinds.indexOf(kind)]!;
          return { kind, priority, seen, next: nextPriority(ctx.queue(kind), seen) };
        })
        .sort((a, b) => a.next - b.next)
    : heads;
  for (const { kind, priority, seen, next } of order) {
    // Queues with nothing the lessee may have in reach are not popped. A job that becomes ready
    // after the peek is announced, and the announcement wakes a waiting lessee (wakeups.ts).
    if (priority === Number.POSITIVE_INFINITY) continue;
    const queue = ctx.queue(kind);
    if (seen && next === Number.POSITIVE_INFINITY && (await allSeenTaken(queue, seen))) continue;
    const job = await popNoted(queue, ctx.fetcher(kind), token, ctx.barred, ctx.pops);
    if (job) return { job, kind };
  }
  return null;
}
