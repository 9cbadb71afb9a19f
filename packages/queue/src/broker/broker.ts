// The proof broker: the one owner of a job lease's lifecycle, in the vocabulary of Aztec's
// prover broker and agents. A proving agent (a signed-in worker session) gets a job
// (getProvingJob), reports progress (heartbeat), success (a proof) or an error (give back or
// fail); a job whose agent falls silent times out (a lapse) and goes back to the queue. The
// relay's gateway keeps authentication, proof checks, Postgres bookkeeping and HTTP; everything
// that touches a lease in Redis is here, and LEASE_MS lives only in this broker's options.
//
// A lease is BullMQ's lock on the job (fabric.ts) plus a record of who holds it (records.ts):
// records are keyed by token and compared-and-deleted, expire on Redis's clock, and a lapse is
// claimed from them atomically, so a fast re-lease cannot hide a lapse and a late call cannot
// delete a new holder's record. Whether a lapse is withholding is judged by which brokers were
// present through the lease's last window (presence.ts), not by one relay's start time.
//
// Bounds (attempts.ts): each agent may hand a job back (or let it lapse, or send a bad proof)
// maxRetryableFailsPerAgent times, and its operator, across all its worker ids, a bounded number
// of times too; every job has maxJobAttempts failed attempts across everyone, after which it is
// failed for good and its block takes the deadline path.
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { isDeepStrictEqual } from "node:util";
import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import type { AffinityNote, Lessee } from "../affinity.ts";
import { type FailRecord, lesseeKey } from "../attempts.ts";
import { type ProofJobData, type ProofResult, parseJobId, type QueueKind } from "../catalog.ts";
import { blockQueueName, type ProofFabric } from "../fabric.ts";
import type { SlotClaim } from "../picking.ts";
import { retryUntilDone } from "../retry.ts";
import { BrokerPresence, presenceTimingsOf } from "./presence.ts";
import {
  brokerPrefixOf,
  type HeartbeatRefusal,
  type Lease,
  LeaseRecords,
  leaseIdOf,
} from "./records.ts";
import {
  AgentAtCapacityError,
  type ErrorOutcome,
  type Lapse,
  LeaseLostError,
  type LeaseOutcome,
  type ProofBrokerOptions,
  type ProvingAgent,
} from "./types.ts";

/**
 * Longest a capacity slot reserved for a lease attempt is held (the attempt replaces it with its
 * lease's record, or releases it, when it ends).
 */
const SLOT_HOLD_MS = 30_000;

/** Longest close() waits for the last attempts of steps retried in the background. */
const CLOSE_RETRIES_MS = 2_000;

/** Most leases remembered by knownLease (live leases of this relay's workers are far fewer). */
const KNOWN_LEASES = 50_000;

/**
 * The value a job of `queue` (BullMQ's key of its queue) was completed with, parsed, or null
 * while it is not completed (BullMQ keeps the value as JSON and the job in its completed set).
 */
async function completedValue(client: Redis, queue: string, jobId: string): Promise<unknown> {
  const [value, finished] = await Promise.all([
    client.hget(`${queue}:${jobId}`, "returnvalue"),
    client.zscore(`${queue}:completed`, jobId),
  ]);
  if (value === null || finished === null) return null;
  try {
    return JSON.parse(value);
  } catch {
    return null;
  }
}

/**
 * How many of a session's most recent leases are kept for its sign-out: the leases a stopping
 * worker never heard of are its last requests' (at most one a capacity slot), and up to one more
 * a slot may have been leased with a result sent just before the stop; with room to spare.
 */
export const recentLeasesKept = (capacity: number): number => 2 * capacity + 8;

/** Random bytes drawn for lease tokens, refilled TOKEN_POOL_BYTES at a time. */
const TOKEN_POOL_BYTES = 4096;
let tokenPool = Buffer.alloc(0);
let tokenPoolAt = 0;

/**
 * 16 hex digits of a lease token from the CSPRNG, out of a pool: one call into it per 512 tokens
 * rather than one per lease attempt (a call per attempt was ~1.7% of a loaded relay's busy time in
 * a CPU profile).
 */
export function tokenNonce(): string {
  if (tokenPoolAt + 8 > tokenPool.length) {
    tokenPool = randomBytes(TOKEN_POOL_BYTES);
    tokenPoolAt = 0;
  }
  tokenPoolAt += 8;
  return tokenPool.toString("hex", tokenPoolAt - 8, tokenPoolAt);
}

/** The errors BullMQ raises from its own checks of a job's state (finished-errors.js). */
const bullmqVerdict = /^(Missing (key|lock) for job|Lock mismatch for job|Job .+ is not in the )/;

export class ProofBroker {
  readonly records: LeaseRecords;
  readonly presence: BrokerPresence;
  readonly leaseMs: number;
  /** The longest a lease may be held from its grant (0: no limit; see ProofBrokerOptions). */
  readonly leaseMaxMs: number;
  /**
   * Leases this broker granted, by session and job, so a lease's heartbeats and result need no
   * lookup in Redis. Only a hint: every use of a lease is checked in Redis against its token,
   * and a caller whose use finds it lost looks it up again (another relay may have granted the
   * same session a newer lease on the job). Dropped with the record; the oldest go past
   * KNOWN_LEASES.
   */
  private readonly known = new Map<string, Lease>();
  /** Steps retried in the background until Redis answers (keepTrying). */
  private readonly retrying = new Set<Promise<void>>();
  private readonly closing = new AbortController();

  constructor(
    readonly fabric: ProofFabric,
    readonly options: ProofBrokerOptions,
  ) {
    // BullMQ's lock is the lease: its duration is this broker's LEASE_MS, nothing else.
    if (fabric.options.leaseMs !== options.leaseMs) {
      throw new Error("the fabric's lock duration must be the broker's leaseMs");
    }
    this.leaseMs = options.leaseMs;
    this.leaseMaxMs = options.leaseMaxMs ? Math.max(options.leaseMaxMs, options.leaseMs) : 0;
    const prefix = brokerPrefixOf(fabric.options.prefix);
    // Unclaimed records (no relay was up to see the lapse) go a while after their lease.
    this.records = new LeaseRecords(fabric.redis, prefix, 2 * options.leaseMs + 60_000);
    const { intervalMs, freshMs } = presenceTimingsOf(options.leaseMs, options.presenceIntervalMs);
    this.presence = new BrokerPresence(
      fabric.redis,
      prefix,
      intervalMs,
      options.leaseMs + 2_000,
      freshMs,
      options.behind,
    );
  }

  /** Announces this broker's presence (and keeps it fresh until close). */
  async start(): Promise<void> {
    await this.presence.start();
  }

  async close(): Promise<void> {
    this.closing.abort();
    // Their last attempts, for at most CLOSE_RETRIES_MS: a Redis that does not answer is not
    // waited for.
    await Promise.race([
      Promise.all(this.retrying),
      sleep(CLOSE_RETRIES_MS, undefined, { ref: false }),
    ]);
    await this.presence.stop();
  }

  /**
   * A lease attempt whose record's reply was lost may have left a record of a lease its worker
   * never heard of, whose lapse would be counted against that worker while this relay looks
   * present. So the job goes back to its queue (while the lock is still the attempt's) and the
   * record, if any, is deleted, retried until Redis answers: a dropped connection fails its
   * commands at the drop (redis.ts), and this runs within moments of the reconnect, long before
   * the lease could lapse (keepTrying says when it gives up). A record still on its way (a
   * deadline passed while Redis was slow) runs before the deletion, which follows it on the same
   * connection.
   */
  private disown(
    block: number,
    kind: QueueKind,
    job: Job<ProofJobData>,
    token: string,
    sessionId: string,
  ): void {
    const lockKey = this.lockKey(job.id!, kind);
    this.keepTrying(async () => {
      // Given back first, so that a record still on its way finds no lock and writes nothing.
      await this.moveBack(block, kind, job, token, sessionId);
      // The record dropped, then the lock read, on one connection in that order.
      const [, lock] = await Promise.all([
        this.records.drop({ jobId: job.id!, sessionId, token }),
        this.fabric.redis.get(lockKey),
      ]);
      if (lock === token) throw new Error("the job is still to be given back");
    });
  }

  /**
   * Runs `step` in the background until it succeeds (it fails while Redis is not back), waiting
   * 25 ms, then twice as long each time up to a second; gives up once a lease record would have
   * expired anyway (its TTL). When the broker closes, each makes one last attempt at once.
   */
  private keepTrying(step: () => Promise<unknown>): void {
    const run = retryUntilDone(step, Date.now() + this.records.ttlMs, this.closing.signal);
    this.retrying.add(run);
    void run.finally(() => this.retrying.delete(run));
  }

  /** BullMQ's lock key of a job: the lease itself. */
  lockKey(jobId: string, kind: QueueKind): string {
    return this.bullmqKey(jobId, kind, "lock");
  }

  /** BullMQ's key of a job's `suffix` ("lock", "processed": its children's results). */
  private bullmqKey(jobId: string, kind: QueueKind, suffix: string): string {
    return `${this.queueKey(jobId, kind)}:${jobId}:${suffix}`;
  }

  /** BullMQ's key of the queue a job is in (its sets and lists are `<key>:<name>`). */
  private queueKey(jobId: string, kind: QueueKind): string {
    const block = parseJobId(jobId)?.blockNumber ?? 0;
    return `${this.fabric.options.prefix}:${blockQueueName(block, kind)}`;
  }

  private lessee(agent: ProvingAgent, nowMs: number): Lessee {
    return {
      worker: lesseeKey(agent.operator, agent.workerName),
      operator: agent.operator.toLowerCase(),
      affinity: agent.affinity,
      nowMs,
    };
  }

  /**
   * Leases the agent the most urgent job it may have among `blocks` (in order), within its
   * capacity: take from BullMQ, then record. `nowMs`: the relay's clock, for affinity holds.
   * A capacity slot is reserved only once a look finds a job in reach, by the look itself (the
   * peek's script; a look that finds nothing, the common case of a long poll, reserves nothing
   * and is one round trip); a full agent is refused then (AgentAtCapacityError), and gets
   * nothing when nothing is ready.
   */
  async getProvingJob(
    agent: ProvingAgent,
    blocks: Promise<readonly number[]> | readonly number[],
    nowMs: number,
  ): Promise<LeaseOutcome> {
    const atCapacity = () =>
      new AgentAtCapacityError(`this worker already holds ${agent.capacity} leases`);
    const sessionKey = this.records.sessionKey(agent.sessionId);
    const member = `slot:${randomUUID()}`;
    let placeholder: string | undefined;
    let full = false;
    // A peek asked to reserve and its answer lost (a timed-out command) may still have: the
    // slot is given back when the attempt fails.
    let asked = false;
    const slot: SlotClaim = {
      get at() {
        if (placeholder !== undefined || full) return undefined;
        asked = true;
        return { key: sessionKey, capacity: agent.capacity, member, holdMs: SLOT_HOLD_MS };
      },
      peeked: (reserved) => {
        if (reserved) placeholder = member;
        else full = true;
      },
      take: async () => {
        if (placeholder !== undefined) return;
        if (!full) {
          asked = true;
          full = !(await this.records.reserveSlot(
            agent.sessionId,
            agent.capacity,
            member,
            SLOT_HOLD_MS,
          ));
        }
        if (full) {
          throw atCapacity();
        }
        placeholder = member;
      },
    };
    const lessee = this.lessee(agent, nowMs);
    const out: LeaseOutcome = { blocks: new Set(), passedOver: false, failed: [] };
    try {
      const list = await blocks;
      // No block to look at: a full agent is still told so (and a Redis it cannot reach still
      // fails the attempt), in one read.
      if (list.length === 0 && (await this.records.isFull(agent.sessionId, agent.capacity))) {
        throw atCapacity();
      }
      for (const block of list) {
        out.blocks.add(block);
        for (;;) {
          const token = `${agent.sessionId}.${tokenNonce()}`;
          const outcome = await this.fabric.take(block, agent.kinds, token, lessee, slot);
          out.passedOver ||= outcome.passedOver;
          if (!outcome.taken) break;
          const { job, kind } = outcome.taken;
          const id = job.id!;
          if (!agent.jobTypes.includes(job.data.type)) {
            // Root kinds share a queue; an agent that did not declare this type gives it back.
            await this.moveBack(block, kind, job, token, agent.sessionId);
            out.passedOver = true;
            break;
          }
          // Recorded unless the job's failed attempts reached the cap (checked in the same
          // round trip, which also reads a parent's children's results: its inputs).
          const recorded = await this.records
            .record(
              {
                jobId: id,
                queue: kind,
                sessionId: agent.sessionId,
                operator: agent.operator,
                workerName: agent.workerName,
                token,
                brokerId: this.presence.id,
              },
              this.lockKey(id, kind),
              placeholder!,
              { ...this.fabric.attempts.capField(block, id), max: this.options.maxJobAttempts },
              recentLeasesKept(agent.capacity),
              job.data.children.length > 0 ? this.bullmqKey(id, kind, "processed") : undefined,
            )
            .catch((err: unknown) => {
              // Its reply lost (the connection dropped, or the deadline passed): the record may
              // be written, for a lease whose worker is told the attempt failed.
              this.disown(block, kind, job, token, agent.sessionId);
              throw err;
            });
          if (recorded === "ended") {
            // The session signed out after its slot was reserved (endSession read its recent
            // leases before this one could join them): the job goes back, never leased, and
            // the slot with it (the script dropped the placeholder).
            placeholder = undefined;
            this.disown(block, kind, job, token, agent.sessionId);
            throw atCapacity();
          }
          if (recorded === "exhausted") {
            // Its last attempt lapsed: it is failed now, and the next job is looked for.
            if (await this.failTaken(job, token, "attempt cap reached")) out.failed.push(id);
            continue;
          }
          // Lapsed before it was recorded (this process stalled for LEASE_MS): BullMQ has it.
          if (!recorded) return out;
          const { lease, processed } = recorded;
          this.remember(lease);
          out.leased = { lease, job, kind, ...(processed ? { childResults: processed } : {}) };
          return out;
        }
      }
    } catch (err) {
      if (placeholder !== undefined || asked) {
        await this.records.releaseSlot(agent.sessionId, member).catch(() => {});
      }
      throw err;
    }
    if (placeholder !== undefined) await this.records.releaseSlot(agent.sessionId, member);
    return out;
  }

  /**
   * The lease this broker last granted the agent on a job, if not dropped since (no Redis
   * round trip). A hint: see `known`; leaseOf is the record.
   */
  knownLease(sessionId: string, jobId: string): Lease | undefined {
    return this.known.get(`${sessionId} ${jobId}`);
  }

  /** Forgets a known lease (its record was dropped, or it was found lost). */
  forget(lease: Lease): void {
    const key = `${lease.sessionId} ${lease.jobId}`;
    if (this.known.get(key)?.token === lease.token) this.known.delete(key);
  }

  private remember(lease: Lease): void {
    const key = `${lease.sessionId} ${lease.jobId}`;
    this.known.delete(key);
    this.known.set(key, lease);
    if (this.known.size > KNOWN_LEASES) this.known.delete(this.known.keys().next().value!);
  }

  /**
   * A session signs out: no broker reserves it a slot again (for `keepMs` at least: longer than
   * any relay may still take the session for live), and the jobs of its most recent leases are
   * returned, newest first, for the caller to give back those it still holds (leaseOf). Among
   * them is every lease its worker never heard of, since such a lease answered a request cut
   * short by the worker's stop, after which it asks for nothing more.
   */
  endSession(sessionId: string, keepMs: number): Promise<string[]> {
    return this.records.endSession(sessionId, keepMs);
  }

  /** Whether the session signed out (endSession). */
  sessionEnded(sessionId: string): Promise<boolean> {
    return this.records.ended(sessionId);
  }

  /** The agent's record of a lease on a job (the newest, if it has several), or null. */
  async leaseOf(sessionId: string, jobId: string): Promise<Lease | null> {
    return (await this.records.ofJob(jobId)).find((l) => l.sessionId === sessionId) ?? null;
  }

  /** Every record of a job's leases, newest first (tests and diagnostics). */
  recordsOf(jobId: string): Promise<Lease[]> {
    return this.records.ofJob(jobId);
  }

  /** Live leases and slot reservations of a session. */
  liveCount(sessionId: string): Promise<number> {
    return this.records.liveCount(sessionId);
  }

  /** liveCount of each session, in one round trip after one reading of Redis's clock. */
  liveCounts(sessionIds: readonly string[]): Promise<number[]> {
    return this.records.liveCounts(sessionIds);
  }

  /**
   * A heartbeat: the lease is extended by LEASE_MS, but never past LEASE_MAX_MS from its grant
   * (a heartbeat once that has passed is refused: the lease runs out and its lapse is handled as
   * any other). Its new expiry (Redis time), or null.
   * `arrivedAgoMs`: how long ago the heartbeat reached the relay; one that arrived before the
   * lease's expiry revives its lock if the relay only got to it after the lock ran out, as long
   * as the lapse was not swept yet (records.ts). So does a later one when no broker could have
   * heard the worker through the lease's last window (Redis, or every relay, was out of reach).
   */
  async heartbeat(lease: Lease, arrivedAgoMs = 0): Promise<number | null> {
    const out = await this.heartbeatOrWhy(lease, arrivedAgoMs);
    return typeof out === "number" ? out : null;
  }

  /** As heartbeat, but a refusal says why (records.ts). */
  async heartbeatOrWhy(lease: Lease, arrivedAgoMs = 0): Promise<number | HeartbeatRefusal> {
    const kind = lease.queue as QueueKind;
    const base = this.queueKey(lease.jobId, kind);
    return this.records.heartbeat(
      lease,
      this.lockKey(lease.jobId, kind),
      (suffix) => `${base}:${suffix}`,
      this.leaseMs,
      arrivedAgoMs,
      this.presence,
      this.leaseMaxMs,
    );
  }

  /**
   * A proof the gateway accepted: the job is completed while the lock is this lease's, else
   * LeaseLostError (and the record stays for the lapse to be claimed). `job`: as just read.
   *
   * `completed` is called once the job is completed and the drop of its lease record (which
   * frees the agent's capacity slot) is sent, before Redis answers the drop: the fabric's
   * commands go out on one connection in the order they are sent, so a look for the agent's next
   * job started from there reaches Redis after the drop and finds the slot free, one round trip
   * sooner. (Should Redis have lost its scripts with the connection up, which a restart does not
   * do (the fabric loads them as its connection comes back), the drop goes again after its
   * NOSCRIPT answer and that look may find the agent still full: it then gets no job and asks
   * again.)
   */
  async reportProvingJobSuccess(
    lease: Lease,
    result: ProofResult,
    affinity?: AffinityNote,
    job?: Job<ProofJobData>,
    completed?: () => void,
  ): Promise<void> {
    const block = parseJobId(lease.jobId)!.blockNumber;
    job ??= await this.fabric.getJob(block, lease.queue as QueueKind, lease.jobId);
    if (!job) throw new LeaseLostError(`job ${lease.jobId} is gone`);
    const parentId = job.parent?.id;
    const held =
      affinity && parentId ? await this.fabric.noteAffinity(block, parentId, affinity) : false;
    // Kept with the lease's id (not its token, which BullMQ's lock checks), so that the
    // lease's own completion can be told from anyone else's.
    const stored = { ...result, lease: leaseIdOf(lease.token) };
    try {
      await job.moveToCompleted(stored, lease.token, false);
    } catch (err) {
      // The completion ran but its reply was lost, and BullMQ's connection sent it again (or
      // the worker sent the result again after a failure past that point): already done.
      if (!(await this.completedWith(job, lease, stored))) {
        throw new LeaseLostError(`lease on ${lease.jobId} lost: ${(err as Error).message}`);
      }
    }
    this.forget(lease);
    // `completed` runs as the drop is sent, not once it is answered (see above). The job is
    // completed now: should Redis not answer what follows, it is done later (keepTrying), and
    // the proof stands.
    if (!parentId || held) {
      const dropped = this.records.drop(lease);
      completed?.();
      await dropped.catch(() => this.keepTrying(() => this.records.drop(lease)));
      if (!parentId) return;
      // A held parent is for its children's provers, any of whom may be waiting: wake everyone.
      return this.fabric.announce().catch(() => this.keepTrying(() => this.fabric.announce()));
    }
    // The record is dropped and the parent announced if ready, in one round trip.
    const announce = () =>
      this.fabric.announceReadyParent(block, parentId, this.records.dropKeys(lease));
    const announced = announce();
    completed?.();
    await announced.catch(() => this.keepTrying(announce));
  }

  /**
   * Whether the lease's own completion ran: the job is completed with this very result and
   * lease id (BullMQ keeps the result as JSON). Read on the connection that carried the
   * completion, so that a completion still waiting in Redis (its deadline passed while Redis was
   * slow) is read after it has run.
   */
  private async completedWith(
    job: Job<ProofJobData>,
    lease: Lease,
    stored: ProofResult & { lease: string },
  ): Promise<boolean> {
    const queue = this.queueKey(lease.jobId, lease.queue as QueueKind);
    // The backend of the handle the job came from (a fetcher or a queue), whose connection
    // moveToCompleted used; the fabric's own if BullMQ no longer exposes it so.
    const backend = (job as unknown as { backend?: { client?: Promise<unknown> } }).backend;
    const client = ((await backend?.client) as Redis | undefined) ?? this.fabric.redis;
    const value = await completedValue(client, queue, lease.jobId);
    return value !== null && isDeepStrictEqual(value, JSON.parse(JSON.stringify(stored)));
  }

  /**
   * The result a job was completed with, whoever completed it, and the job's queue, or null
   * while it is not completed (or gone). Read from its queue's keys without opening the block's
   * handles, so an id from a request costs one round trip (the fabric's connection sends the
   * reads together) and nothing else. Both kinds are read where the id leaves it open (below the
   * root, a merge or a base job).
   */
  async completedResultOf(
    jobId: string,
  ): Promise<(ProofResult & { lease?: string; kind: QueueKind }) | null> {
    const pos = parseJobId(jobId);
    if (!pos) return null;
    const kinds: QueueKind[] = pos.level === 0 ? ["root"] : ["merge", "base"];
    const values = await Promise.all(
      kinds.map((kind) => completedValue(this.fabric.redis, this.queueKey(jobId, kind), jobId)),
    );
    const i = values.findIndex((v) => v !== null);
    if (i < 0) return null;
    return { ...(values[i] as ProofResult & { lease?: string }), kind: kinds[i]! };
  }

  /**
   * A lease whose agent never heard of it (it left, or the answer failed): the job goes straight
   * back, uncounted. False when the lock was gone already (the lapse path decides).
   */
  async returnUnheardJob(lease: Lease): Promise<boolean> {
    const block = parseJobId(lease.jobId)!.blockNumber;
    const kind = lease.queue as QueueKind;
    const job = await this.fabric.getJob(block, kind, lease.jobId);
    if (!job) return false;
    try {
      await job.moveToWait(lease.token);
    } catch (err) {
      // BullMQ's verdict on the job (its lock another's or gone, the job gone or moved on): the
      // lapse decides. Anything else (Redis out of reach) is thrown, for the caller to retry.
      if (bullmqVerdict.test(String((err as Error)?.message))) return false;
      throw err;
    }
    // Back in its queue: what follows is bookkeeping, retried on its own, so a caller that
    // tries the whole again never finds the move undone (its lock is gone by then).
    this.forget(lease);
    await this.fabric.announce({ blockNumber: block, kind }).catch(() => {});
    await this.records.drop(lease).catch(() => {
      void retryUntilDone(() => this.records.drop(lease), lease.expiresAt + this.leaseMs);
    });
    return true;
  }

  /**
   * The agent gives a job up. Retryable: counted toward its bars and the job's cap, and the job
   * goes back (or, at the cap, fails). Not retryable: the agent is barred from the job and it
   * fails. `beforeMove(status)` runs while the agent still holds the job (the gateway marks its
   * row). A lease already lost is { lost: true } with nothing counted.
   */
  async reportProvingJobError(
    lease: Lease,
    reason: string,
    retryable: boolean,
    beforeMove?: (status: "queued" | "failed") => Promise<void>,
  ): Promise<ErrorOutcome> {
    const counted = retryable
      ? await this.countFailure(lease)
      : {
          record: await this.fabric.attempts.recordGiveUp(
            parseJobId(lease.jobId)!.blockNumber,
            lease.jobId,
            this.agentKey(lease),
          ),
          capped: false,
        };
    const fails = !retryable || counted.capped;
    const ok = await this.uncountedIfThrown(lease, counted, async () => {
      // A lease already lost (BullMQ's lock is another lease's, or none) is not marked failed:
      // once failed, the row would take no record of the job's next lease. The check renews
      // the lock, so the lease cannot lapse while the row is written, before the move.
      if (fails && (await this.heartbeat(lease)) === null) return false;
      await beforeMove?.(fails ? "failed" : "queued");
      return fails ? this.failHeld(lease, reason) : this.moveHeldBack(lease);
    });
    if (!ok) {
      await this.undoFailure(lease, counted);
      return { lost: true };
    }
    await this.handedBack(lease);
    return this.errorOutcome(counted, fails);
  }

  /**
   * A proof that does not verify: it counts like a retryable fail (the agent's and operator's
   * bars, the job's cap) and cools the agent down on the job for LEASE_MS; the job goes back
   * (or fails at the cap). A lease already lost is { lost: true }: its lapse is claimed instead.
   */
  async rejectProvingJobResult(lease: Lease): Promise<ErrorOutcome> {
    const counted = await this.countFailure(lease);
    const ok = await this.uncountedIfThrown(lease, counted, () =>
      counted.capped
        ? this.failHeld(lease, "invalid proofs reached the attempt cap")
        : this.moveHeldBack(lease),
    );
    if (!ok) {
      await this.undoFailure(lease, counted);
      return { lost: true };
    }
    await this.handedBack(lease);
    await this.coolDown(lease);
    return this.errorOutcome(counted, counted.capped);
  }

  /**
   * BullMQ found the job's lock lapsed (its "stalled" event): claims the job's records whose
   * lock is gone. Each is forgiven when no broker was present through its last window; else its
   * agent is cooled down on the job and the lapse counts like a retryable fail.
   */
  async claimTimedOutJob(jobId: string): Promise<Lapse[]> {
    const known = await this.records.ofJob(jobId);
    if (known.length === 0) return [];
    const claimed = await this.records.claimLapsed(
      jobId,
      this.lockKey(jobId, known[0]!.queue as QueueKind),
      this.presence,
      this.leaseMs,
      this.presence.freshMs,
    );
    const out: Lapse[] = [];
    for (const { lease, brokerPresent } of claimed) {
      this.forget(lease);
      if (!brokerPresent) {
        out.push({ lease, forgiven: true, capped: false });
        continue;
      }
      // The job is already back in the queue: keep the agent off it first.
      await this.coolDown(lease);
      const { capped } = await this.countFailure(lease);
      out.push({ lease, forgiven: false, capped });
    }
    return out;
  }

  /** Forgets a finished block's lease records (its queues and books go with the fabric's). */
  async retireBlock(blockNumber: number): Promise<void> {
    await this.records.retireBlock(blockNumber);
  }

  private agentKey(lease: Lease): string {
    return lesseeKey(lease.operator, lease.workerName);
  }

  private async countFailure(lease: Lease): Promise<{ record: FailRecord; capped: boolean }> {
    const block = parseJobId(lease.jobId)!.blockNumber;
    const record = await this.fabric.attempts.recordRetryable(
      block,
      lease.jobId,
      this.agentKey(lease),
      this.options.maxRetryableFailsPerAgent,
      { operator: lease.operator, maxOperator: this.options.maxJobFailsPerOperator },
    );
    return { record, capped: record.jobFails >= this.options.maxJobAttempts };
  }

  private async undoFailure(lease: Lease, counted: { record: FailRecord }) {
    const block = parseJobId(lease.jobId)!.blockNumber;
    await this.fabric.attempts.undo(block, lease.jobId, this.agentKey(lease), counted.record);
  }

  /**
   * Runs the steps of a counted fail up to its move. One that throws (Postgres or Redis out of
   * reach: the agent is answered with an error and sends the fail again) takes the count back
   * first, retried in the background should Redis not take that either: each fail the agent
   * sends again would otherwise count once more, and a short outage would bar an honest agent
   * and its operator from the job, or fail the job for good. (A move whose reply alone was lost
   * is then one fail uncounted: a count is a bar on agents, not money.)
   */
  private async uncountedIfThrown(
    lease: Lease,
    counted: { record: FailRecord },
    steps: () => Promise<boolean>,
  ): Promise<boolean> {
    try {
      return await steps();
    } catch (err) {
      await this.undoFailure(lease, counted).catch(() =>
        this.keepTrying(() => this.undoFailure(lease, counted)),
      );
      throw err;
    }
  }

  /**
   * A job handed back under its lease: the lease is forgotten and its record dropped. A drop
   * Redis does not take now is retried in the background and the hand-back stands: a record
   * left behind would be claimed with the job's next lapse, as a lapse of this lease.
   */
  private async handedBack(lease: Lease): Promise<void> {
    this.forget(lease);
    await this.records.drop(lease).catch(() => this.keepTrying(() => this.records.drop(lease)));
  }

  private errorOutcome(counted: { record: FailRecord; capped: boolean }, failed: boolean) {
    const max = this.options.maxRetryableFailsPerAgent;
    const r = counted.record;
    return {
      lost: false as const,
      status: failed ? ("failed" as const) : ("requeued" as const),
      retriesLeft: r.barred || failed ? 0 : Math.max(0, max - r.fails),
      capped: counted.capped,
    };
  }

  private async coolDown(lease: Lease) {
    const block = parseJobId(lease.jobId)!.blockNumber;
    // Cool-downs are compared with the asking relay's clock (affinity.ts), as they always were.
    const now = Date.now();
    await this.fabric.attempts.coolDown(
      block,
      lease.jobId,
      this.agentKey(lease),
      now,
      now + this.leaseMs,
    );
  }

  private async moveHeldBack(lease: Lease): Promise<boolean> {
    const block = parseJobId(lease.jobId)!.blockNumber;
    const kind = lease.queue as QueueKind;
    const job = await this.fabric.getJob(block, kind, lease.jobId);
    return job ? this.moveBack(block, kind, job, lease.token, lease.sessionId) : false;
  }

  private async failHeld(lease: Lease, reason: string): Promise<boolean> {
    const block = parseJobId(lease.jobId)!.blockNumber;
    const job = await this.fabric.getJob(block, lease.queue as QueueKind, lease.jobId);
    return job ? this.failTaken(job, lease.token, reason) : false;
  }

  /** Back in its queue at once, announced (`by`: the agent giving it back is not woken). */
  private async moveBack(
    blockNumber: number,
    kind: QueueKind,
    job: Job<ProofJobData>,
    token: string,
    by?: string,
  ): Promise<boolean> {
    try {
      await job.moveToWait(token);
    } catch {
      return false;
    }
    // Back in its queue now, whatever Redis makes of the wake-up (retried on its own).
    const hint = { blockNumber, kind, ...(by ? { by } : {}) };
    await this.fabric.announce(hint).catch(() => this.keepTrying(() => this.fabric.announce(hint)));
    return true;
  }

  private async failTaken(job: Job<ProofJobData>, token: string, reason: string) {
    try {
      await job.moveToFailed(new Error(reason), token, false);
      return true;
    } catch {
      return false;
    }
  }
}
