// The proof-tree fabric on BullMQ. Each block's tree is one flow (a parent job becomes ready
// when all its children completed) spread over three queues of that block, by job kind. Remote
// workers lease over HTTP through manual fetching and never touch Redis. A lease is the BullMQ
// lock (lockDuration = LEASE_MS, extended by heartbeats); locks are never renewed automatically,
// so a silent worker's job is moved back to wait by the stalled checker. maxStalledCount is
// effectively unbounded: withholding must never fail a job or hang its parent.
//
// Per-block queues let the gateway honour who may prove a block (the auction winner while
// committed, anyone in open proving) and order blocks by proof deadline without scanning
// foreign jobs. Readiness is announced on a Redis pub/sub channel so every relay process wakes
// its long-polling lessees the moment a parent becomes ready: most announcements name the one
// job's block and queue, so a relay wakes one lessee that can take it (wakeups.ts); changes to
// the set of blocks being proven are announced separately, so relays drop their cached view.
//
// Beside each block's queues, two small books under the same prefix, removed with the block:
// fails per job and worker, which bar a worker from a job it keeps failing (attempts.ts), and
// who proved which children, for subtree-affinity scheduling (provenance.ts, affinity.ts).
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import type { PlannedNode, TreePlan } from "@prover-boost/core";
import {
  type ConnectionOptions,
  type FlowJob,
  FlowProducer,
  type Job,
  Queue,
  Worker,
} from "bullmq";
import type { Redis } from "ioredis";
import {
  type AffinityNote,
  type BlockSource,
  beforeChildCompletes,
  endLapsedHolds,
  type Lessee,
  type TakeOutcome,
  takeForLessee,
} from "./affinity.ts";
import { AttemptBook } from "./attempts.ts";
import { BlockHandles, blockKinds, blocksWithQueues } from "./block-handles.ts";
import {
  brokerPrefixOf,
  deleteBlockLeaseRecords,
  freeSlotsLua,
  leaseRecordsPrefixOf,
  sessionSetPrefixOf,
} from "./broker/records.ts";
import {
  jobId,
  type ProofJobData,
  type ProofResult,
  parentQueueOf,
  type QueueKind,
  queueFor,
} from "./catalog.ts";
import { LostPops } from "./lost-pops.ts";
import type { PopCount, SlotClaim } from "./picking.ts";
import { ProvenanceBook } from "./provenance.ts";
import {
  coalesceWrites,
  createRedis,
  deleteKeysWithPrefix,
  evalScript,
  loadScripts,
  luaScript,
  redisOptions,
  scanKeys,
} from "./redis.ts";
import type { WorkHint } from "./wakeups.ts";

export interface FabricOptions {
  redisUrl: string;
  /** Key prefix for everything this deployment (or test) stores in Redis. */
  prefix: string;
  leaseMs: number;
  /**
   * How often BullMQ looks for lapsed locks. Default: min(LEASE_MS / 8, 250) ms, so a lapsed job
   * is back in the queue well within a second of its lease's end (one short script per queue).
   */
  stalledIntervalMs?: number;
  /** Run BullMQ's stalled-job checker for the queues this process opens (relays do). */
  checkStalled?: boolean;
  /** Subscribe to readiness announcements (relays do; the aggregator only publishes). */
  subscribe?: boolean;
  /** Deadline for one Redis reply on every connection of the fabric (REDIS_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs?: number;
  /**
   * Asked before each lapse sweep (BullMQ's stalled-job check) with how late the sweep's timer
   * fired and how long sweeps have been put off in a row: false puts this one off. The relay
   * uses it so that its own lateness never lapses a lease (services/load.ts). Default: sweep.
   */
  sweepGate?: (tick: { lateMs: number; deferredMs: number }) => Promise<boolean>;
  /**
   * How long lapse sweeps wait after the fabric's connection to Redis comes up, first or back
   * from a drop (an outage, a restart): workers' heartbeats failed meanwhile, and their retries
   * may revive a lease that ran out while nobody could hear them (broker/records.ts). The worker
   * agent's next one comes within two heartbeat periods (LEASE_MS / 3 each): one it sent just
   * before may go unanswered a period before it gives it up, then it backs off up to a period.
   * Default: LEASE_MS, those two periods and a third for a busy machine (half a lease, as before,
   * swept leases whose heartbeat was on its way). A connection that keeps dropping puts sweeps
   * off (while it is up) for at most this plus LEASE_MS after the first comeback of the row, so
   * it does not hide withholding for good.
   */
  reconnectGraceMs?: number;
}

export const blockQueueName = (blockNumber: number, kind: QueueKind): string =>
  `b${blockNumber}-${kind}`;

const kinds = blockKinds;

/**
 * A BullMQ queue's, fetcher's or flow producer's connection holds its writes to the end of each
 * pass of the event loop (redis.ts, coalesceWrites): the lessees that a batch of replies wakes
 * send their pops, and results their completions, in one write rather than one each. A handle
 * that never connects is left as it is (its commands fail on their own).
 */
function coalesceBullWrites(handle: { getBackend(): { client: Promise<unknown> } }): void {
  handle
    .getBackend()
    .client.then((client) => coalesceWrites(client as Redis))
    .catch(() => {});
}

/** How many queues' handles a flow producer keeps for reuse (three queues a block). */
const FLOW_HANDLES = 48;

/**
 * BullMQ's flow producer makes a new handle on a node's queue (a backend bound to it, with every
 * one of its keys spelt out) for every node it adds: for a block's tree of thousands of jobs over
 * three queues, a quarter to a third of the add's CPU. Here a handle is made once per queue and
 * reused (those of the FLOW_HANDLES queues first used most recently); it holds no state of its
 * own, only the producer's connection and the queue's keys. Left alone if BullMQ no longer makes them this way (adds are
 * then only slower).
 */
function reuseFlowQueueHandles(flow: FlowProducer): void {
  const backend = flow.getBackend() as unknown as {
    forQueue?: (queueName: string, prefix?: string) => unknown;
  };
  const make = backend.forQueue;
  if (typeof make !== "function") return;
  const handles = new Map<string, unknown>();
  backend.forQueue = (queueName, prefix) => {
    const key = `${prefix ?? ""}\n${queueName}`;
    let handle = handles.get(key);
    if (handle === undefined) {
      handle = make.call(backend, queueName, prefix);
      handles.set(key, handle);
      if (handles.size > FLOW_HANDLES) handles.delete(handles.keys().next().value!);
    }
    return handle;
  };
}

/**
 * Children's proofs in `children` order, from BullMQ's children values (keyed by job key) and,
 * in a rebuilt tree, the proofs of children proven before the rebuild (carried in the job data).
 */
function proofsInOrder(
  data: ProofJobData,
  values: Record<string, ProofResult>,
): (`0x${string}` | undefined)[] {
  const byId = new Map<string, `0x${string}`>(Object.entries(data.proofs ?? {}));
  for (const [key, value] of Object.entries(values)) {
    byId.set(key.slice(key.lastIndexOf(":") + 1), value.proof);
  }
  return data.children.map((c) => byId.get(c));
}

/** A "<job key>:processed" hash as read (field -> JSON), parsed. */
function parsedResults(raw: Record<string, string>): Record<string, ProofResult> {
  const values: Record<string, ProofResult> = {};
  for (const [key, value] of Object.entries(raw)) values[key] = JSON.parse(value);
  return values;
}

/** Every state a job of a block's queues can be in: their sum is how many jobs the tree holds. */
const allStates = [
  "waiting",
  "prioritized",
  "active",
  "waiting-children",
  "completed",
  "failed",
  "delayed",
] as const;

// Announces a parent only if it is queued (in its queue's prioritized set): the check and the
// announcement in one round trip. KEYS[1] the prioritized set; ARGV: job id, channel, message.
// With KEYS[2] and KEYS[3] (a lease's records and its session's set, records.ts) and ARGV[4]
// (its token), that lease's record is dropped first, in the same round trip.
const publishIfQueuedScript = luaScript(`
if KEYS[2] then
  redis.call('HDEL', KEYS[2], ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[4])
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0`);

/** What travels on the readiness channel (JSON). Anything else is read as "wake everyone". */
type Announcement = {
  from: string;
  hint?: WorkHint;
  blocks?: true;
  upcoming?: number;
  /** With `upcoming`: the kinds of queue its tree has (all three if absent). */
  kinds?: unknown;
};

/** How long a block announced as upcoming keeps its prepared handles before it is active. */
export const UPCOMING_HOLD_MS = 15_000;

function parseAnnouncement(message: string): Announcement | null {
  try {
    const a = JSON.parse(message) as Announcement;
    return typeof a === "object" && a !== null && typeof a.from === "string" ? a : null;
  } catch {
    return null;
  }
}

// KEYS[1] the block's seal marker, then per queue its active list, wait list, prioritized set,
// failed set and delayed set; ARGV[1] the seal's time (ms), ARGV[2] SEALED_SCORE, ARGV[3] and
// ARGV[4] the prefixes of the jobs' lease records and of the sessions' sets (records.ts), then
// per queue its job keys' prefix (`<prefix>:<queue>:`; a job's lock is
// `<prefix>:<queue>:<id>:lock`). Every job that could be leased, completed or retried
// goes to the delayed set at a score no promotion reaches (see sealBlock); the leases on the
// active ones end, their places in their workers' capacity given back.
const sealScript = luaScript(`${freeSlotsLua}
local per = 5
for i = 1, (#KEYS - 1) / per do
  local k = 1 + per * (i - 1)
  local active, wait, prioritized, failed, delayed = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local ids = redis.call('LRANGE', active, 0, -1)
  for _, id in ipairs(ids) do
    redis.call('DEL', ARGV[4 + i] .. id .. ':lock')
    freeSlots(ARGV[3] .. id, ARGV[4])
  end
  for _, id in ipairs(redis.call('LRANGE', wait, 0, -1)) do ids[#ids + 1] = id end
  for _, id in ipairs(redis.call('ZRANGE', prioritized, 0, -1)) do ids[#ids + 1] = id end
  for _, id in ipairs(redis.call('ZRANGE', failed, 0, -1)) do ids[#ids + 1] = id end
  for _, id in ipairs(ids) do redis.call('ZADD', delayed, ARGV[2], id) end
  redis.call('DEL', active, wait, prioritized, failed)
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`);

/**
 * A sealed job's score in its queue's delayed set: 2^62, far past any promotion (BullMQ promotes
 * a delayed job once its score, ms * 0x1000, is passed: this one in some thirty thousand years).
 */
const SEALED_SCORE = "4611686018427387904";

export class ProofFabric {
  /**
   * Emits "work" (a WorkHint, or null for anything) when jobs may have become ready, "blocks"
   * when the set of blocks being proven changed, "upcoming" (blockNumber, its tree's queue kinds)
   * when a block's tree is about to be added, "stalled" (jobId) on lease lapses, and "ready"
   * (jobId) when a completion here made a parent ready.
   */
  readonly events = new EventEmitter();
  /** Tells this process's own announcements apart on the shared channel. */
  private readonly id = randomUUID();
  /** Fails per job and worker, and the jobs each worker is barred from (per block). */
  readonly attempts: AttemptBook;
  /** Who proved the children of each node (per block), for subtree affinity. */
  readonly provenance: ProvenanceBook;
  /**
   * Pops of this process's lessees that came back with a job, or empty (another lessee, here or
   * on another relay, took the job between the look and the pop: picking.ts).
   */
  readonly pops: PopCount = { job: 0, empty: 0 };
  /** Pops whose replies were lost, and the jobs they left locked (lost-pops.ts). */
  private readonly lostPops = new LostPops();
  private readonly connection: ConnectionOptions;
  /** This process's queues and fetchers, per block (block-handles.ts). */
  private readonly handles: BlockHandles;
  private subscriber: Redis | null = null;
  private flow: FlowProducer | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  /**
   * The connection to Redis: whether it is down (dropped and not back yet), when it last came up
   * and when the first of a row of comebacks came (performance.now(); a comeback within the grace
   * of the one before continues the row, so a connection that keeps dropping does not defer
   * sweeps for good).
   */
  private readonly link = { down: false, backAt: -Infinity, graceFrom: -Infinity };

  private constructor(
    readonly options: FabricOptions,
    readonly redis: Redis,
  ) {
    this.events.setMaxListeners(0);
    let connected = false;
    redis.on("close", () => {
      if (connected) this.link.down = true;
    });
    // The first connection counts as a comeback too: a relay that starts may find leases that
    // ran out while no relay was up.
    redis.on("ready", () => {
      const now = performance.now();
      if (now - this.link.backAt >= this.reconnectGraceMs()) this.link.graceFrom = now;
      this.link.backAt = now;
      this.link.down = false;
      connected = true;
      // Redis keeps no script across a restart: loaded again before the fabric needs them.
      loadScripts(redis);
    });
    // bullmq types its connection against its own ioredis typings; the options are the same.
    this.connection = redisOptions(options.redisUrl, options) as ConnectionOptions;
    this.attempts = new AttemptBook(redis, options.prefix);
    this.provenance = new ProvenanceBook(redis, options.prefix);
    this.handles = new BlockHandles(
      {
        queue: (blockNumber, kind) => this.openQueue(blockNumber, kind),
        fetcher: (blockNumber, kind) => this.openFetcher(blockNumber, kind),
        key: (blockNumber, kind, suffix) =>
          `${options.prefix}:${blockQueueName(blockNumber, kind)}:${suffix}`,
      },
      redis,
    );
  }

  static async open(options: FabricOptions): Promise<ProofFabric> {
    const fabric = new ProofFabric(options, createRedis(options.redisUrl, options));
    if (options.subscribe !== false) {
      const sub = createRedis(options.redisUrl, { ...options, autoPipelining: false });
      fabric.subscriber = sub;
      sub.on("message", (_channel: string, message: string) => fabric.onMessage(message));
      await sub.subscribe(fabric.channel);
      // ioredis subscribes again on each new connection, but forgets the channel for good when
      // that connection drops before Redis confirms it (it notes channels as confirmed): every
      // new connection subscribes here too (a second SUBSCRIBE to a channel is a no-op).
      sub.on("ready", () => {
        sub.subscribe(fabric.channel).catch(() => {});
      });
    }
    return fabric;
  }

  get channel(): string {
    return `${this.options.prefix}:work`;
  }

  private onMessage(message: string): void {
    const a = parseAnnouncement(message);
    if (a?.from === this.id) return; // already emitted here
    if (Number.isSafeInteger(a?.upcoming)) {
      const kinds = Array.isArray(a!.kinds)
        ? blockKinds.filter((k) => (a!.kinds as unknown[]).includes(k))
        : blockKinds;
      this.events.emit("upcoming", a!.upcoming, kinds);
      return;
    }
    if (a?.blocks) this.events.emit("blocks");
    this.events.emit("work", a?.hint ?? null);
  }

  /**
   * Tells every relay process that jobs may be ready: with a hint, one job of that block and
   * queue (a relay wakes one lessee that can take it); without, anything (everyone wakes).
   */
  async announce(hint: WorkHint = null): Promise<void> {
    this.events.emit("work", hint);
    await this.redis.publish(this.channel, JSON.stringify({ from: this.id, hint }));
  }

  /** Tells every relay process that blocks started or stopped being proven (and wakes all). */
  async announceBlocks(): Promise<void> {
    this.events.emit("blocks");
    this.events.emit("work", null);
    await this.redis.publish(this.channel, JSON.stringify({ from: this.id, blocks: true }));
  }

  /**
   * Tells every relay process that a block is about to be proven (its tree is being added), so
   * each can open the block's handles beforehand (prepareBlock). Wakes nobody.
   */
  async announceUpcoming(
    blockNumber: number,
    kinds: readonly QueueKind[] = blockKinds,
  ): Promise<void> {
    this.events.emit("upcoming", blockNumber, kinds);
    await this.redis.publish(
      this.channel,
      JSON.stringify({ from: this.id, upcoming: blockNumber, kinds }),
    );
  }

  /**
   * Opens a block's queues and fetchers of `kinds` (those its tree has) before its first lease (a
   * block announced as upcoming): connecting them is then off the path of the block's first
   * jobs. Kept for UPCOMING_HOLD_MS, or until their first use, even while the block is not yet
   * active. Resolves once they are connected (at once if this fabric is closing).
   */
  prepareBlock(
    blockNumber: number,
    kinds: readonly QueueKind[] = blockKinds,
    /** How long they are kept at least; 0 for a block already active (closed with the rest). */
    holdMs = UPCOMING_HOLD_MS,
  ): Promise<void> {
    return this.handles.prepare(blockNumber, kinds, holdMs);
  }

  private base() {
    return { connection: this.connection, prefix: this.options.prefix };
  }

  /** A block's queue of one kind, opened on first use (block-handles.ts). */
  private queue(blockNumber: number, kind: QueueKind): Queue<ProofJobData> {
    return this.handles.queue(blockNumber, kind);
  }

  /**
   * The fetcher that hands out a block's jobs of one kind if it is open now, else undefined
   * (asking opens nothing). A job taken through it is moved (completed, given back) with it, so
   * a job kept from its lease can be moved without a fresh read while this is the same fetcher.
   */
  openFetcherOf(blockNumber: number, kind: QueueKind): Worker<ProofJobData> | undefined {
    return this.handles.openFetcher(blockNumber, kind);
  }

  /** A block's fetcher of one kind, opened on first use (block-handles.ts). */
  private fetcher(blockNumber: number, kind: QueueKind): Worker<ProofJobData> {
    return this.handles.fetcher(blockNumber, kind);
  }

  private openQueue(blockNumber: number, kind: QueueKind): Queue<ProofJobData> {
    const q = new Queue<ProofJobData>(blockQueueName(blockNumber, kind), this.base());
    q.on("error", () => {});
    coalesceBullWrites(q);
    return q;
  }

  private openFetcher(blockNumber: number, kind: QueueKind): Worker<ProofJobData> {
    const w = new Worker<ProofJobData>(blockQueueName(blockNumber, kind), null, {
      ...this.base(),
      autorun: false,
      lockDuration: this.options.leaseMs,
      skipLockRenewal: true,
      maxStalledCount: Number.MAX_SAFE_INTEGER,
      stalledInterval:
        this.options.stalledIntervalMs ?? Math.min(Math.floor(this.options.leaseMs / 8), 250),
      // Lapses are swept by sweepLapses (below), never by BullMQ's own timer.
      skipStalledCheck: true,
    });
    w.on("stalled", (id: string) => {
      this.events.emit("stalled", id);
      void this.announce({ blockNumber, kind }).catch(() => {});
    });
    w.on("error", () => {});
    coalesceBullWrites(w);
    this.lostPops.watch(w, () => this.announce({ blockNumber, kind }));
    if (this.options.checkStalled !== false) this.sweepLapses(w);
    return w;
  }

  /**
   * The lapse sweeper of one fetcher: BullMQ's stalled-job check every stalled interval (a job
   * whose lock is gone since the previous check goes back to its queue, "stalled"), run from
   * this loop rather than BullMQ's own so that a sweep can be put off: while the fabric's own
   * connection is down (its heartbeats fail: BullMQ's connection may be back sooner), within
   * `reconnectGraceMs` of its coming back, and when `sweepGate` says so.
   */
  private sweepLapses(w: Worker<ProofJobData>): void {
    const interval = w.opts.stalledInterval ?? 250;
    const sweep = (w as unknown as { moveStalledJobsToWait(): Promise<void> })
      .moveStalledJobsToWait;
    let scheduledAt = performance.now();
    let deferredSince: number | null = null;
    const tick = async () => {
      if (w.closing) return;
      const firedAt = performance.now();
      // Waiting for the link is not the gate's: it does not start the gate's count of sweeps put
      // off in a row (nor end it, or a relay behind with a flapping connection would never sweep).
      const linkWait = this.link.down || this.inReconnectGrace(firedAt);
      const deferredMs = deferredSince === null ? 0 : firedAt - deferredSince;
      const gate = this.options.sweepGate;
      let go = !linkWait;
      if (go && gate) {
        go = await gate({ lateMs: firedAt - scheduledAt, deferredMs }).catch(() => true);
      }
      if (w.closing) return;
      if (go) {
        deferredSince = null;
        await sweep.call(w).catch(() => {});
      } else if (!linkWait) deferredSince ??= firedAt;
      if (w.closing) return;
      scheduledAt = performance.now() + interval;
      setTimeout(() => void tick(), interval).unref();
    };
    void tick();
  }

  private reconnectGraceMs(): number {
    return this.options.reconnectGraceMs ?? this.options.leaseMs;
  }

  /**
   * Whether lapse sweeps wait at `now` for workers' retried heartbeats: within `reconnectGraceMs`
   * of the connection coming back, and within that plus LEASE_MS of the first such comeback in a
   * row of drops.
   */
  private inReconnectGrace(now: number): boolean {
    const graceMs = this.reconnectGraceMs();
    return (
      now - this.link.backAt < graceMs && now - this.link.graceFrom < graceMs + this.options.leaseMs
    );
  }

  /**
   * Adds a block's tree as one flow. `priority(node)`: BullMQ priority, 1 = most urgent.
   * Job ids derive from block and position, so adding the same tree twice adds nothing.
   * `proven` (job id -> proof): nodes proven already (a tree rebuilt after Redis lost it); they
   * are not added, and their proofs go into their parents' data. `proofSystem`: the block's,
   * carried in every job's data for the verifier. Returns how many jobs the tree has in the
   * fabric.
   */
  async addTree(
    blockNumber: number,
    plan: TreePlan,
    priority: (node: PlannedNode) => number,
    inputsOf: (node: PlannedNode) => `0x${string}`[],
    proven: ReadonlyMap<string, `0x${string}`> = new Map(),
    proofSystem = "sim",
  ): Promise<number> {
    const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
    const idOf = (key: string) => {
      const n = byKey.get(key)!;
      return jobId(blockNumber, n.level, n.index);
    };
    let added = 0;
    const build = (node: PlannedNode): FlowJob => {
      added++;
      const childIds = node.children.map(idOf);
      const data: ProofJobData = {
        blockNumber,
        type: node.type,
        level: node.level,
        index: node.index,
        inputs: inputsOf(node),
        children: childIds,
      };
      if (proofSystem !== "sim") data.proofSystem = proofSystem;
      const done = childIds.filter((id) => proven.has(id));
      if (done.length > 0)
        data.proofs = Object.fromEntries(done.map((id) => [id, proven.get(id)!]));
      const children = node.children
        .filter((k) => !proven.has(idOf(k)))
        .map((k) => build(byKey.get(k)!));
      return {
        name: node.type,
        queueName: blockQueueName(blockNumber, queueFor(node.type)),
        data,
        opts: { jobId: jobId(blockNumber, node.level, node.index), priority: priority(node) },
        ...(children.length > 0 ? { children } : {}),
      } as FlowJob;
    };
    if (proven.has(idOf(plan.root))) return 0;
    const root = build(byKey.get(plan.root)!);
    if (!this.flow) {
      this.flow = new FlowProducer(this.base());
      // Connection errors surface as rejected adds; BullMQ reconnects by itself.
      this.flow.on("error", () => {});
      coalesceBullWrites(this.flow);
      reuseFlowQueueHandles(this.flow);
    }
    await this.flow.add(root);
    await this.announce();
    return added;
  }

  /**
   * How many jobs a block's tree holds in the fabric, in any state (BullMQ keeps completed and
   * failed jobs until the block is retired). Fewer than were added means Redis lost some.
   */
  async treeJobs(blockNumber: number): Promise<number> {
    return (await this.treeCounts(blockNumber)).jobs;
  }

  /** treeJobs, and how many of them are completed, from the same counts (one read per queue). */
  async treeCounts(blockNumber: number): Promise<{ jobs: number; completed: number }> {
    const counts = await Promise.all(
      kinds.map((kind) => this.queue(blockNumber, kind).getJobCounts(...allStates)),
    );
    let jobs = 0;
    let completed = 0;
    for (const c of counts) {
      for (const n of Object.values(c)) jobs += n;
      completed += c.completed ?? 0;
    }
    return { jobs, completed };
  }

  /**
   * Removes whatever is left of a block's tree before it is rebuilt: every key of its queues
   * (the block's attempt and provenance books stay), keeping this process's handles open. Keys
   * are deleted outright rather than through BullMQ's obliterate, which leaves jobs waiting for
   * children behind and would move parents of removed children along.
   */
  async clearTree(blockNumber: number): Promise<void> {
    for (const kind of kinds) {
      await deleteKeysWithPrefix(
        this.redis,
        `${this.options.prefix}:${blockQueueName(blockNumber, kind)}`,
      );
    }
    // And the records of the leases on it, all lost with it: a record left behind would be
    // judged with the lapse of the rebuilt job's next lease, charging a worker that was told its
    // lease was gone (409) with withholding.
    await deleteBlockLeaseRecords(this.redis, brokerPrefixOf(this.options.prefix), blockNumber);
    // A rebuilt tree is not sealed (sealBlock).
    await this.redis.del(this.sealKey(blockNumber));
  }

  /**
   * Takes the most urgent ready job of one block among the given kinds, or null; with a lessee,
   * passing over jobs it is barred from and, with affinity, preferring one it proved a child of
   * (see affinity.ts and picking.ts).
   */
  async take(
    blockNumber: number,
    allowed: readonly QueueKind[],
    token: string,
    lessee?: Lessee,
    /** The lessee's capacity slot, held before a job is popped (picking.ts, SlotClaim). */
    slot?: SlotClaim,
  ): Promise<TakeOutcome> {
    const kindsAllowed = kinds.filter((k) => allowed.includes(k));
    let kept: string | undefined;
    try {
      const outcome = await takeForLessee(
        this.source(blockNumber),
        kindsAllowed,
        token,
        lessee,
        slot,
      );
      kept = outcome.taken?.job.id;
      return outcome;
    } finally {
      // Every job the take popped and passed over is back: the one it brought is the only job
      // its token may hold.
      this.lostPops.settle(token, kept);
    }
  }

  private source(blockNumber: number): BlockSource {
    return {
      blockNumber,
      redis: this.redis,
      queue: (kind) => this.queue(blockNumber, kind),
      fetcher: (kind) => this.fetcher(blockNumber, kind),
      attempts: this.attempts,
      provenance: this.provenance,
      announce: () => this.announce(),
      pops: this.pops,
    };
  }

  /** Resolves on any announcement, or after `ms`, or when aborted (lessees use wakeups.ts). */
  waitForWork(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off("work", done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.events.on("work", done);
      signal?.addEventListener("abort", done);
    });
  }

  async getJob(blockNumber: number, kind: QueueKind, id: string) {
    return (await this.queue(blockNumber, kind).getJob(id)) ?? undefined;
  }

  /**
   * Children's proofs of a job, in the job's child order (missing ones as undefined), from
   * `results` (its "<job key>:processed" hash, already read: a lease's record reads it) or read
   * now.
   */
  async childProofs(
    job: Job<ProofJobData>,
    results?: Record<string, string>,
  ): Promise<(`0x${string}` | undefined)[]> {
    if (job.data.children.length === 0) return [];
    if (!results) return proofsInOrder(job.data, await job.getChildrenValues<ProofResult>());
    return proofsInOrder(job.data, parsedResults(results));
  }

  /**
   * A job and its children's proofs, read side by side (one round trip instead of two: the
   * children's results are BullMQ's "<job key>:processed" hash, which Job.getChildrenValues
   * reads). Base jobs have no children, so theirs is not read. Undefined when the job is gone.
   */
  async jobWithChildProofs(blockNumber: number, kind: QueueKind, id: string) {
    const queue = this.queue(blockNumber, kind);
    const [job, processed] = await Promise.all([
      queue.getJob(id),
      kind === "base"
        ? ({} as Record<string, string>)
        : this.redis.hgetall(queue.toKey(`${id}:processed`)),
    ]);
    if (!job) return undefined;
    return { job, proofs: proofsInOrder(job.data, parsedResults(processed)) };
  }

  /**
   * After a child completed (the broker's completion): if that made its parent ready, tells
   * every relay, in the same round trip as the check. Read after the completion, so of two
   * children completing at once the later one sees the parent ready (both may; announcing twice
   * costs one spare wake-up). A parent made ready by its last child is queued by priority, so
   * it is in the prioritized set.
   */
  async announceReadyParent(
    blockNumber: number,
    parentId: string,
    /** A lease record to drop first, in the same round trip (the completed child's). */
    drop?: { recordsKey: string; sessionKey: string; token: string },
  ): Promise<void> {
    const parentKind = parentQueueOf(parentId);
    const hint = { blockNumber, kind: parentKind };
    const prioritized = this.queue(blockNumber, parentKind).keys.prioritized!;
    const message = JSON.stringify({ from: this.id, hint });
    const published = drop
      ? await evalScript(
          this.redis,
          publishIfQueuedScript,
          3,
          prioritized,
          drop.recordsKey,
          drop.sessionKey,
          parentId,
          this.channel,
          message,
          drop.token,
        )
      : await evalScript(
          this.redis,
          publishIfQueuedScript,
          1,
          prioritized,
          parentId,
          this.channel,
          message,
        );
    if (published === 1) {
      this.events.emit("ready", parentId);
      this.events.emit("work", hint);
    }
  }

  /**
   * Subtree affinity before a completion (affinity.ts); a hold gets a timer for its end.
   * Returns whether the parent is held.
   */
  async noteAffinity(blockNumber: number, parentId: string, note: AffinityNote): Promise<boolean> {
    const src = this.source(blockNumber);
    // Only a scheduling preference: losing it costs a proof transfer, never the result.
    if (!(await beforeChildCompletes(src, parentId, note).catch(() => false))) return false;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      // As of the hold's end on the relay's clock: ends it unless a prover already asked.
      void endLapsedHolds(src, note.nowMs + note.holdMs!).catch(() => {});
    }, note.holdMs);
    timer.unref();
    this.timers.add(timer);
    return true;
  }

  /**
   * Puts every failed job of a block back in its queue (the block went to open proving). A job
   * no longer failed by the time it is put back (another aggregator, during a restart's overlap,
   * put it back first) is left alone and not reported. `retried` is told each job this call put
   * back, once it is back.
   */
  async retryFailed(
    blockNumber: number,
    /** Which failed jobs to put back (all by default). */
    shouldRetry: (id: string) => boolean | Promise<boolean> = () => true,
    retried: (id: string) => void | Promise<void> = () => {},
  ): Promise<string[]> {
    const out: string[] = [];
    for (const kind of kinds) {
      for (const job of await this.queue(blockNumber, kind).getFailed()) {
        if (!(await shouldRetry(job.id!))) continue;
        try {
          await job.retry("failed");
        } catch (err) {
          if ((await job.getState()) !== "failed") continue;
          throw err;
        }
        await retried(job.id!);
        out.push(job.id!);
      }
    }
    if (out.length > 0) await this.announce();
    return out;
  }

  /**
   * Completed jobs of a block with their results (for reconciling Postgres after a crash), only
   * those among `ids`: the ids are read first and only those jobs are loaded.
   */
  async completed(
    blockNumber: number,
    ids: ReadonlySet<string>,
  ): Promise<{ id: string; result: ProofResult }[]> {
    const out: { id: string; result: ProofResult }[] = [];
    for (const kind of kinds) {
      const queue = this.queue(blockNumber, kind);
      for (const id of await queue.getRanges(["completed"], 0, -1)) {
        if (!ids.has(id)) continue;
        const job = await queue.getJob(id);
        if (job?.returnvalue) out.push({ id, result: job.returnvalue as ProofResult });
      }
    }
    return out;
  }

  async counts(blockNumber: number): Promise<Record<QueueKind, Record<string, number>>> {
    const out = {} as Record<QueueKind, Record<string, number>>;
    for (const kind of kinds) {
      out[kind] = await this.queue(blockNumber, kind).getJobCounts(
        "waiting",
        "prioritized",
        "active",
        "waiting-children",
        "completed",
        "failed",
      );
    }
    return out;
  }

  /**
   * Seals a block's tree before it is given up (an expired block), in one script, so atomically
   * against every completion: the lock of each job being proven is taken (its worker's result,
   * checked against that lock, is refused as a lost lease; no heartbeat revives it, as the job is
   * no longer in the active list, nor does a lapse charge anyone; its place in its worker's
   * capacity is free at once), and every job that could be
   * leased, completed or retried (active, waiting, prioritized, failed) is parked in its queue's
   * delayed set, where nothing takes it. The tree's job count is unchanged (the keeper does not
   * take it for lost), what completed stays readable, and BullMQ's obliterate still finds every
   * job. A marker says the block is sealed (sealedOf) until it is retired or its tree rebuilt.
   */
  async sealBlock(blockNumber: number, at = Date.now()): Promise<void> {
    const queues = kinds.map((kind) => this.queue(blockNumber, kind));
    await evalScript(
      this.redis,
      sealScript,
      1 + 5 * queues.length,
      this.sealKey(blockNumber),
      ...queues.flatMap((q) => [
        q.keys.active!,
        q.keys.wait!,
        q.keys.prioritized!,
        q.keys.failed!,
        q.keys.delayed!,
      ]),
      String(at),
      SEALED_SCORE,
      leaseRecordsPrefixOf(brokerPrefixOf(this.options.prefix)),
      sessionSetPrefixOf(brokerPrefixOf(this.options.prefix)),
      ...queues.map((q) => q.toKey("")),
    );
  }

  /** Which of `blocks` are sealed (sealBlock), with when (ms), in one round trip. */
  async sealedOf(blocks: readonly number[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    if (blocks.length === 0) return out;
    const at = await this.redis.mget(...blocks.map((n) => this.sealKey(n)));
    for (const [i, n] of blocks.entries()) if (at[i] != null) out.set(n, Number(at[i]));
    return out;
  }

  /** Blocks sealed (sealBlock) and not yet retired, found with SCAN (start-up sweeps). */
  async sealedBlocks(): Promise<number[]> {
    const keys = await scanKeys(this.redis, `${this.options.prefix}:sealed:*`);
    return keys
      .map((key) => Number(key.slice(key.lastIndexOf(":") + 1)))
      .filter((n) => Number.isSafeInteger(n))
      .sort((a, b) => a - b);
  }

  private sealKey(blockNumber: number): string {
    return `${this.options.prefix}:sealed:${blockNumber}`;
  }

  /**
   * Closes this process's handles on a finished block and, with `removeData`, removes its queues
   * and books from Redis (the aggregator, once the block is paid or expired). Other processes
   * close theirs with closeInactive. A sealed tree (sealBlock) is removed key by key, with the
   * records of the leases that were on it and, last, its seal: BullMQ's obliterate would move
   * the parents of the parked jobs it removes back to their wait lists, leasable until their own
   * queue's turn came.
   */
  async retireBlock(blockNumber: number, removeData = true): Promise<void> {
    const books = [...this.attempts.keys(blockNumber), ...this.provenance.keys(blockNumber)];
    let sealed = false;
    if (removeData) {
      try {
        sealed = (await this.sealedOf([blockNumber])).has(blockNumber);
      } catch (err) {
        // Not knowing whether the tree is sealed, nothing is removed (obliterate must not touch
        // a sealed one): the handles close, and the caller retires it again later.
        await this.handles.close(blockNumber);
        throw err;
      }
    }
    if (sealed) {
      await this.handles.close(blockNumber);
      await this.redis.del(...books).catch(() => {});
      await this.clearTree(blockNumber);
      return;
    }
    if (removeData) await this.redis.del(...books).catch(() => {});
    await this.handles.close(
      blockNumber,
      removeData ? (q) => q.obliterate({ force: true }).catch(() => {}) : undefined,
    );
  }

  /**
   * Closes this process's handles on blocks not in `active` (finished, here or by another
   * process) unless used since `readStartedAt` (performance.now() when the caller began reading
   * `active`) or just before it; they reopen if used again. Returns the blocks closed.
   */
  closeInactive(active: ReadonlySet<number>, readStartedAt: number): Promise<number[]> {
    return this.handles.closeInactive(active, readStartedAt);
  }

  /** Closes the fetchers and queues of blocks not in `active` (see closeInactive). */
  async closeFetchersExcept(active: ReadonlySet<number>): Promise<void> {
    await this.handles.closeInactive(active, Number.POSITIVE_INFINITY);
  }

  /**
   * Blocks that have queues in Redis (a queue with jobs has a `meta` key), found with SCAN: for
   * the aggregator's start-up sweep of blocks paid but not retired before a crash.
   */
  blocksInRedis(): Promise<number[]> {
    return blocksWithQueues(this.redis, this.options.prefix);
  }

  /** Blocks this process holds BullMQ handles on, and how many (for sweeps and tests). */
  openHandles(): { blocks: number[]; queues: number; fetchers: number } {
    const { queues, fetchers } = this.handles.counts();
    return { blocks: this.handles.openBlocks(), queues, fetchers };
  }

  async ping(): Promise<boolean> {
    return (await this.redis.ping()) === "PONG";
  }

  /** Removes every key under this fabric's prefix (tests and devnet teardown). */
  async obliterate(): Promise<void> {
    await deleteKeysWithPrefix(this.redis, this.options.prefix);
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // Deaf first: an announcement heard while the handles close must not open new ones.
    this.events.removeAllListeners();
    await this.subscriber?.quit().catch(() => {});
    await this.handles.closeAll();
    await this.flow?.close().catch(() => {});
    await this.redis.quit().catch(() => {});
  }
}
