// The worker gateway: lease (long poll), heartbeat, result, fail, and the Postgres side of a
// lapse. The lease lifecycle in Redis is the ProofBroker's (packages/queue); this keeps
// authentication's outcome (the session), proof checks, Postgres crediting and penalties, and
// the HTTP mapping. Every proof is verified with its block's proof system before anything is
// credited (real proofs in worker threads, services/proof-check.ts), and a result is credited
// only once BullMQ completed the job under this lease: a lost lease credits nothing.
import { performance } from "node:perf_hooks";
import { DomainError, InvariantError, type JobType, rootJobTypes } from "@prover-boost/core";
import {
  accounts,
  balanceOf,
  chargePenalty,
  endLease,
  type Tx,
  type WorkerSession,
} from "@prover-boost/db";
import {
  type AffinityNote,
  AgentAtCapacityError,
  type Job,
  type Lease,
  LeaseLostError,
  leaseIdOf,
  lesseeKey,
  type ProofJobData,
  type ProvingAgent,
  parentQueueOf,
  parseJobId,
  type QueueKind,
  queueFor,
  retryUntilDone,
} from "@prover-boost/queue";
import type { Hex } from "viem";
import type { RelayContext } from "../context.ts";
import { type Arrival, arrivedAgoMs } from "./load.ts";
import {
  type NodeProof,
  type ProofNode,
  type ProofSystem,
  ProofSystemUnavailable,
  proofNodeOf,
} from "./proof-check.ts";
import { heldLeaseGraceMs, leasableJobTypes, sessionExpired } from "./sessions.ts";

const MAX_POLL_SLICE_MS = 1000;

/** A leased job as read when it was leased, and the fetcher that took it. */
interface LeasedRead {
  job: Job<ProofJobData>;
  proofs: (Hex | undefined)[];
  fetcher: object;
}

/**
 * The job and its children's proofs as read at the lease, by the lease this relay granted (the
 * broker's known leases, which are dropped with their record), so the result's check needs no
 * second read: a job's data never changes, and its children were all proven before it was ready.
 * Every use of the lease is still checked in Redis by its token. Kept only while the fetcher
 * that took the job is the block's open one (the job is completed through it).
 */
const leasedReads = new WeakMap<Lease, LeasedRead>();

function leasedReadOf(
  ctx: RelayContext,
  lease: Lease,
  block: number,
  kind: QueueKind,
): LeasedRead | undefined {
  const read = leasedReads.get(lease);
  return read && ctx.fabric.openFetcherOf(block, kind) === read.fetcher ? read : undefined;
}

function kindsOf(types: readonly string[]): QueueKind[] {
  return [...new Set(types.map((t) => queueFor(t as JobType)))];
}

/** The worker session as the broker knows it: only the job types its signed tier allows. */
function agentOf(ctx: RelayContext, session: WorkerSession): ProvingAgent {
  const jobTypes = leasableJobTypes(ctx.settings.jobMinTier, session);
  return {
    sessionId: session.id,
    operator: session.operator,
    workerName: session.workerName,
    capacity: session.capacity,
    jobTypes,
    kinds: kindsOf(jobTypes),
    affinity: ctx.settings.scheduling.mode === "affinity",
  };
}

export async function leaseJob(
  ctx: RelayContext,
  session: WorkerSession,
  waitMs: number,
  signal: AbortSignal,
) {
  const deadline = ctx.now() + waitMs;
  const kinds = kindsOf(leasableJobTypes(ctx.settings.jobMinTier, session));
  let since = ctx.wakeups.mark();
  let attempt = await gatedAttempt(ctx, session, signal, deadline);
  for (;;) {
    if (attempt.leased) return attempt.leased;
    const left = deadline - ctx.now();
    if (left <= 0 || signal.aborted) return null;
    const scope = { id: session.id, kinds, blocks: attempt.blocks };
    const wake = await ctx.wakeups.wait(scope, since, Math.min(left, MAX_POLL_SLICE_MS), signal);
    // A caller that went away is not leased a job it would never hear of.
    if (signal.aborted) return null;
    since = ctx.wakeups.mark();
    attempt = await gatedAttempt(ctx, session, signal, deadline);
    // Woken for a job, it found nothing but passed over jobs it may not have, or it never looked
    // (its turn did not come in time): the job may be another's to take, so the next waiter is
    // woken for it.
    if (wake && !attempt.leased && (attempt.passedOver || attempt.gaveUp)) {
      ctx.wakeups.passOn(wake, session.id);
    }
  }
}

/**
 * How long a lease attempt may wait for its turn at least, counted from its asking; longer when
 * its request's own deadline (the long poll's `waitMs`) is later. See gatedAttempt.
 */
export const GATE_WAIT_MIN_MS = 5000;

/**
 * A lease attempt in its turn (ctx.leaseGate, LEASE_CONCURRENCY at once). A lease's clock starts
 * when it is granted: with every long poll woken at once (a tree fanned out to a thousand
 * workers), attempts interleave and each granted answer waits behind all of them, past LEASE_MS
 * in the worst case, so the worker hears of a lease that has already lapsed. In turns, a grant
 * is answered after a few other attempts at most; the wait is spent before the grant, where no
 * clock runs. A caller that left while waiting, or whose session expired, is not looked for.
 *
 * The wait for a turn has a deadline: the request's own (`until`), but at least
 * GATE_WAIT_MIN_MS. While Redis stalls, every attempt under way waits out its commands' deadlines
 * (REDIS_COMMAND_TIMEOUT_MS each), and the queue behind them would grow with every long poll:
 * a thousand of them, LEASE_CONCURRENCY at a time, would each wait minutes for an answer. An
 * attempt whose turn has not come by then looks at nothing and finds no job (the long poll is
 * answered 204, and its worker asks again); one whose turn came runs to its end, so no grant is
 * ever left unanswered.
 */
function gatedAttempt(
  ctx: RelayContext,
  session: WorkerSession,
  signal: AbortSignal,
  until: number,
): Promise<LeaseAttempt> {
  const asked = performance.now();
  const gate = ctx.leaseGate;
  // Queued behind others (rather than run at once): only then is a deadline needed.
  const queued = gate.activeCount + gate.pendingCount >= gate.concurrency;
  let started = false;
  let gaveUp = false;
  // A session that expired while it waited (a long poll, or a result's next job sought after its
  // proof was checked) takes no new lease.
  const turn = gate((): LeaseAttempt | Promise<LeaseAttempt> => {
    started = true;
    return gaveUp || signal.aborted || sessionExpired(ctx, session)
      ? noLeaseAttempt()
      : tryLeaseOnce(ctx, session, asked);
  });
  if (!queued) return turn;
  return new Promise<LeaseAttempt>((resolve, reject) => {
    // Its turn not come by the deadline, or its caller gone: it answers now, and its place in
    // the queue, when reached, looks at nothing.
    const giveUp = () => {
      if (started || gaveUp) return;
      gaveUp = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", giveUp);
      if (!signal.aborted) ctx.metrics.leaseGateGaveUp.inc();
      resolve({ ...noLeaseAttempt(), gaveUp: true });
    };
    const timer = setTimeout(giveUp, Math.max(until - ctx.now(), GATE_WAIT_MIN_MS));
    signal.addEventListener("abort", giveUp, { once: true });
    const settled = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", giveUp);
    };
    turn.then(
      (attempt) => {
        settled();
        resolve(attempt);
      },
      (err) => {
        settled();
        reject(err);
      },
    );
  });
}

const noLeaseAttempt = (): LeaseAttempt => ({ blocks: new Set<number>(), passedOver: false });

/** A lease attempt's outcome: the job leased, or none, with the blocks looked at. */
interface LeaseAttempt {
  leased?: Awaited<ReturnType<typeof describeLeasedJob>>;
  blocks: Set<number>;
  passedOver: boolean;
  /** Its turn did not come in time (gatedAttempt): it looked at nothing. */
  gaveUp?: boolean;
}

/**
 * One look at every block this worker may lease from: the job leased, or none, with the blocks
 * looked at and whether jobs it may not have were passed over.
 */
async function tryLeaseOnce(
  ctx: RelayContext,
  session: WorkerSession,
  /** When the attempt asked for its turn (performance.now()). */
  asked: number,
): Promise<LeaseAttempt> {
  const turn = performance.now();
  const now = ctx.now();
  // Read while the broker reserves a capacity slot (awaited, or its failure handled, there).
  const eligible = ctx.registry
    .eligible(session.operator, now)
    .then((bs) => withoutUnbackedOpenProving(ctx, session.operator, bs))
    .then((bs) => bs.map((b) => b.number));
  eligible.catch(() => {});
  let outcome: Awaited<ReturnType<RelayContext["broker"]["getProvingJob"]>>;
  try {
    outcome = await ctx.broker.getProvingJob(agentOf(ctx, session), eligible, now);
  } catch (err) {
    if (!(err instanceof AgentAtCapacityError)) throw err;
    // A session signed out (endSession) is refused every slot; said as what it is.
    if (await ctx.broker.sessionEnded(session.id)) {
      throw new DomainError("SESSION_EXPIRED", "the session signed out; sign in again");
    }
    throw new DomainError("CAPACITY_EXCEEDED", err.message);
  }
  const took = performance.now();
  if (outcome.failed.length > 0) await markFailed(ctx.prisma, outcome.failed);
  const { blocks, passedOver } = outcome;
  if (!outcome.leased) return { blocks, passedOver };
  const { lease, job } = outcome.leased;
  try {
    const proofs = await inputsOf(
      ctx,
      job,
      await ctx.fabric.childProofs(job, outcome.leased.childResults),
      "the job was given back",
    );
    const fetcher = ctx.fabric.openFetcherOf(job.data.blockNumber, outcome.leased.kind);
    if (fetcher) leasedReads.set(lease, { job, proofs, fetcher });
    // Its record in the tree view is written after the answer (services/lease-marks.ts).
    markLeased(ctx, lease, session, job);
    const leased = await describeLeasedJob(ctx, lease, job, proofs);
    // Ready since it was added when none of its children was left to prove in the flow.
    const readyWhenAdded = job.data.children.every((c) => job.data.proofs?.[c] !== undefined);
    ctx.metrics.leased(lease.jobId, job.data.type, lease.leasedAt, job.timestamp, readyWhenAdded);
    ctx.metrics.stepDone("gate", asked, turn);
    ctx.metrics.stepDone("take", turn, took);
    return { leased, blocks, passedOver };
  } catch (err) {
    // The request fails, so the worker never hears of this lease: the job goes straight back
    // to the queue rather than lapsing later as withholding held against the worker.
    await returnUnheard(ctx, lease).catch(() => {});
    throw err;
  }
}

/**
 * A ready job's children's outputs as Redis holds them (BullMQ's "<job>:processed" hash), with
 * any it no longer holds (the hash evicted or lost while the tree survived) read from the
 * children's recorded proofs in Postgres, which are the same outputs. One that neither has yet
 * (its proof's mark still on its way, group commit) is nobody's fault: 503 UNAVAILABLE, saying
 * what became of the job (`then`), never a job served or a proof judged without an input.
 */
async function inputsOf(
  ctx: RelayContext,
  job: Job<ProofJobData>,
  outputs: (Hex | undefined)[],
  then: string,
): Promise<Hex[]> {
  const { children } = job.data;
  const missing = children.filter((_, i) => outputs[i] === undefined);
  if (missing.length === 0) return outputs as Hex[];
  const rows = await ctx.prisma.proofJob.findMany({
    where: { id: { in: missing }, status: "proven", proof: { not: null } },
    select: { id: true, proof: true },
  });
  const recorded = new Map(rows.map((r) => [r.id, r.proof as Hex]));
  if (rows.length < missing.length)
    throw new DomainError(
      "UNAVAILABLE",
      `the inputs of ${job.id} are not available yet; ${then}, retry shortly`,
    );
  return children.map((id, i) => outputs[i] ?? recorded.get(id)!);
}

/**
 * Open proving is open to anyone, so an operator's workers may lease its jobs only while the
 * operator holds at least OPEN_PROVING_MIN_COLLATERAL of free collateral (what invalid proofs
 * are penalized from). Blocks the operator won are not affected.
 */
async function withoutUnbackedOpenProving<B extends { stage: string }>(
  ctx: RelayContext,
  operator: string,
  blocks: B[],
): Promise<B[]> {
  const min = ctx.settings.openProvingMinCollateral;
  if (min === 0n || !blocks.some((b) => b.stage === "open_proving")) return blocks;
  const free = await balanceOf(ctx.prisma, accounts.available(operator));
  return free >= min ? blocks : blocks.filter((b) => b.stage !== "open_proving");
}

/**
 * Jobs the broker failed for good: their rows say so whatever lease they show (the tree view;
 * the deadline path re-issues the failed rows it finds).
 */
async function markFailed(db: Tx, ids: string[]) {
  await db.proofJob.updateMany({
    where: { id: { in: ids }, status: { in: ["queued", "leased"] } },
    data: { status: "failed" },
  });
}

/**
 * With affinity scheduling: who proved this job, and how long a parent it makes ready waits for
 * this worker (or the other child's prover); no wait for a parent this worker cannot take.
 */
function affinityNote(
  ctx: RelayContext,
  session: WorkerSession,
  job: Job<ProofJobData>,
): AffinityNote | undefined {
  if (ctx.settings.scheduling.mode !== "affinity") return undefined;
  const parentId = job.parent?.id;
  const canTakeParent =
    parentId !== undefined &&
    kindsOf(leasableJobTypes(ctx.settings.jobMinTier, session)).includes(parentQueueOf(parentId));
  return {
    worker: lesseeKey(session.operator, session.workerName),
    nowMs: ctx.now(),
    holdMs: canTakeParent ? ctx.settings.scheduling.affinityHoldMs : 0,
  };
}

/**
 * The tree view's record of a lease (group-committed, not waited for); conditional so it can
 * never undo a proven job, nor the end of this lease or the record of a newer one (endLease).
 */
function markLeased(
  ctx: RelayContext,
  lease: Lease,
  session: WorkerSession,
  job: Job<ProofJobData>,
) {
  ctx.leaseMarks.write({
    kind: "leased",
    jobId: lease.jobId,
    blockNumber: job.data.blockNumber,
    operator: session.operator,
    worker: session.workerName,
    leaseId: leaseIdOf(lease.token),
    leaseAt: lease.leasedAt,
  });
}

async function describeLeasedJob(
  ctx: RelayContext,
  lease: Lease,
  job: Job<ProofJobData>,
  outputs: Hex[],
) {
  return {
    id: lease.jobId,
    type: job.data.type,
    blockNumber: job.data.blockNumber,
    level: job.data.level,
    index: job.data.index,
    inputs: job.data.inputs,
    proofSystem: (job.data.proofSystem ?? "sim") as "sim" | "honk",
    ...(job.data.type === "base" ? { txData: await txDataOf(ctx, job.data) } : {}),
    children: job.data.children.map((id, i) => ({ id, output: outputs[i]!, proof: outputs[i]! })),
    leaseExpiresAt: lease.expiresAt,
  };
}

/** A base job's transaction data as the sequencer uploaded it with the auction, if it did. */
async function txDataOf(
  ctx: RelayContext,
  data: { blockNumber: number; inputs: readonly Hex[] },
): Promise<Hex | null> {
  const hash = data.inputs[0];
  if (hash === undefined) return null;
  return ctx.txData.of(data.blockNumber, hash);
}

/**
 * The caller's lease on a job, or LEASE_LOST; JOB_NOT_FOUND for an id of no job at all. Whether
 * the job exists is asked only when the caller holds no lease on it (its ProofJob row: a tree's
 * rows are written before any of its jobs can be leased), never on the way of a live lease.
 * Should Postgres not answer, the refusal stays LEASE_LOST.
 */
async function ownLease(ctx: RelayContext, session: WorkerSession, jobId: string): Promise<Lease> {
  const pos = parseJobId(jobId);
  if (!pos) throw new DomainError("JOB_NOT_FOUND", `no job ${jobId}`);
  const lease = await ctx.broker.leaseOf(session.id, jobId);
  if (lease) return lease;
  const row = await ctx.prisma.proofJob
    .findUnique({ where: { id: jobId }, select: { id: true } })
    .catch(() => ({ id: jobId }));
  if (!row) throw new DomainError("JOB_NOT_FOUND", `no job ${jobId}`);
  throw new DomainError("LEASE_LOST", `job ${jobId} is not leased to this worker`);
}

/**
 * Runs `use` with the caller's lease on a job: the one this relay granted it, with no lookup,
 * when known (ctx.broker.knownLease), else the record in Redis. Every use checks the lease in
 * Redis by its token; a known lease that turns out lost is looked up once more, in case another
 * relay granted the same session a newer lease on the job, and `use` runs again with that one.
 */
async function withOwnLease<T>(
  ctx: RelayContext,
  session: WorkerSession,
  jobId: string,
  use: (lease: Lease) => Promise<T>,
): Promise<T> {
  const known = ctx.broker.knownLease(session.id, jobId);
  if (!known) return use(await ownLease(ctx, session, jobId));
  try {
    return await use(known);
  } catch (err) {
    if (!(err instanceof DomainError) || err.code !== "LEASE_LOST") throw err;
    ctx.broker.forget(known);
    const lease = await ctx.broker.leaseOf(session.id, jobId);
    if (!lease || lease.token === known.token) throw err;
    return use(lease);
  }
}

/** This lease as its job's row knows it (endLease). */
const asRecorded = (lease: Lease) => ({
  jobId: lease.jobId,
  leaseId: leaseIdOf(lease.token),
  leaseAt: lease.leasedAt,
});

/**
 * A heartbeat. `arrival`: when the relay read it (services/load.ts); one that arrived before the
 * lease ran out counts even if the relay only handles it after.
 */
export async function heartbeat(
  ctx: RelayContext,
  session: WorkerSession,
  jobId: string,
  arrival?: Arrival,
) {
  return withOwnLease(ctx, session, jobId, async (lease) => {
    // A lapsed lease's record is left for the lapse to be claimed: a late heartbeat must not
    // make it go unrecorded.
    const agoMs = arrivedAgoMs(arrival);
    const arrivedAt = ctx.now() - agoMs;
    const leaseExpiresAt = await ctx.broker.heartbeatOrWhy(lease, agoMs);
    if (typeof leaseExpiresAt !== "number") {
      // Judged at the heartbeat's arrival: by the script where it read the record (on Redis's
      // clock, after the round trip, so it is the script's verdict that counts), else here.
      const longest = ctx.broker.leaseMaxMs;
      if (
        leaseExpiresAt === "held-too-long" ||
        (longest > 0 && arrivedAt >= lease.leasedAt + longest)
      ) {
        throw new DomainError(
          "LEASE_LOST",
          `the lease on ${jobId} has been held for LEASE_MAX_MS (${longest} ms) since its grant; it is not extended again and runs out`,
        );
      }
      throw new DomainError("LEASE_LOST", `the lease on ${jobId} lapsed`);
    }
    return { leaseExpiresAt };
  });
}

/**
 * A worker hands back a proof. It is verified with the block's proof system against the node the
 * job proves: its own data and its children's accepted outputs (both in Redis), so a proof of
 * another node, or over other children's outputs, fails like a tampered one. A real proof is
 * then stored once (Postgres, ctx.proofStore) and only its public output travels on. Then the broker completes the job in BullMQ, which succeeds
 * only while this worker's lock is live: a lost lease is refused there and nothing is credited.
 * Then Postgres records the proof and its credit; should the relay die between the two, the
 * aggregator's reconciler copies the result from BullMQ (see reconcile.ts). A proof that does
 * not verify is given back through the broker first (it counts toward the worker's and
 * operator's bars and the job's attempt cap); only if that succeeded, the lease being still
 * this worker's, is the invalid_proof penalty recorded and up to INVALID_PROOF_PENALTY_WEI of
 * the operator's free collateral burned.
 */
export async function submitResult(
  ctx: RelayContext,
  session: WorkerSession,
  jobId: string,
  proof: string,
  publicInputs: readonly Hex[] = [],
  arrival?: Arrival,
  /**
   * Called once the proof is accepted in the fabric (the job completed, and the release of the
   * worker's capacity slot sent: Redis runs it before any of the fabric's own commands sent from
   * here, such as the next lease's look), while its Postgres mark may still be on its way: a
   * result that asks for the worker's next job seeks it from here, so its look travels beside
   * the release and the two marks are written together rather than one after the other. For a
   * block's root, only once the mark is in (the block is then done).
   */
  accepted?: () => void,
) {
  try {
    return await withOwnLease(ctx, session, jobId, (lease) =>
      submitWithLease(ctx, session, lease, proof, publicInputs, arrival, accepted),
    );
  } catch (err) {
    if (!(err instanceof DomainError) || err.code !== "LEASE_LOST") throw err;
    if (!(await acceptedBefore(ctx, session, jobId, proof, publicInputs))) throw err;
    accepted?.();
    return { status: "accepted" as const };
  }
}

/**
 * A result sent again for a job that this worker's proof already completed: its first answer was
 * an error although the proof was taken (its mark or its lease record's drop failed, or the
 * answer never arrived), and the lease it came under is gone with the completion. Whether this
 * proof is the one the job was completed with, under this worker's name: the job's result in the
 * fabric names the operator and worker, and the proof is, byte for byte, the one kept (a real
 * proof in the proof store, verified when it was first accepted; a simulated one is its own
 * output). Nothing is verified again, so sending it again costs the relay two reads. Then its
 * mark is written again (nothing once the row is proven; the row if the first mark never came),
 * and the answer is the first one's: accepted, credited once. Anyone else's result, or another
 * proof (even one that would verify), stays refused as a lost lease, with nothing recorded and
 * nothing charged.
 */
async function acceptedBefore(
  ctx: RelayContext,
  session: WorkerSession,
  jobId: string,
  proof: string,
  publicInputs: readonly Hex[],
): Promise<boolean> {
  const done = await ctx.broker.completedResultOf(jobId);
  if (!done || done.operator !== session.operator || done.worker !== session.workerName) {
    return false;
  }
  const sent = proof.toLowerCase();
  const kept = await ctx.proofStore.get(jobId);
  const same = kept
    ? kept.proof.toLowerCase() === sent &&
      kept.output.toLowerCase() === done.proof &&
      kept.publicInputs.length === publicInputs.length &&
      kept.publicInputs.every((f, i) => f.toLowerCase() === publicInputs[i]!.toLowerCase())
    : sent === done.proof && publicInputs.length === 0;
  if (!same) return false;
  const { proof: output, operator, worker } = done;
  const blockNumber = parseJobId(jobId)!.blockNumber;
  const isRoot = done.kind === "root";
  await ctx.jobMarks.submit({
    kind: "proven",
    jobId,
    blockNumber,
    isRoot,
    proof: output,
    operator,
    worker,
  });
  if (isRoot) ctx.registry.invalidate();
  return true;
}

/**
 * A real proof's verdict, or ProofSystemUnavailable once PROOF_VERIFY_TIMEOUT_MS have passed
 * since the relay read the result (a verifier stuck, or every verifying thread busy); a result
 * already past it starts no verification. The verification goes on when the answer leaves
 * without its verdict: the result sent again takes it (ProofVerifiers.verdict). The simulated
 * check runs in place at once and never hangs: no deadline, nothing shared.
 */
async function verdictInTime(
  ctx: RelayContext,
  system: ProofSystem,
  node: ProofNode,
  submitted: NodeProof,
  arrival: Arrival | undefined,
): Promise<boolean> {
  if (system.name === "sim") return system.verify(node, submitted);
  const verdictMs = ctx.settings.proofs.verifyTimeoutMs;
  const late = new ProofSystemUnavailable(
    `no verdict within ${verdictMs} ms of the result's arrival`,
  );
  // From when the relay read the result (not counting the loop's recent delay, which
  // arrivedAgoMs adds to be generous to the lease).
  const left = verdictMs - (arrival ? Date.now() - arrival.at : 0);
  if (left <= 0) throw late;
  const noVerdict = new AbortController();
  const timer = setTimeout(() => noVerdict.abort(late), left);
  try {
    const verdict = ctx.verifiers.verdict(system, node, submitted, noVerdict.signal);
    return await new Promise<boolean>((resolve, reject) => {
      noVerdict.signal.addEventListener("abort", () => reject(noVerdict.signal.reason), {
        once: true,
      });
      verdict.then(resolve, reject);
    });
  } finally {
    clearTimeout(timer);
  }
}

async function submitWithLease(
  ctx: RelayContext,
  session: WorkerSession,
  lease: Lease,
  proof: string,
  publicInputs: readonly Hex[],
  arrival: Arrival | undefined,
  accepted: (() => void) | undefined,
) {
  const jobId = lease.jobId;
  const block = parseJobId(jobId)!.blockNumber;
  const kind = lease.queue as QueueKind;
  const read =
    leasedReadOf(ctx, lease, block, kind) ??
    (await ctx.fabric.jobWithChildProofs(block, kind, jobId));
  if (!read) throw new DomainError("LEASE_LOST", `job ${jobId} is no longer leasable`);
  const { job } = read;
  const children = await inputsOf(ctx, job, read.proofs, "the lease is still yours");
  const system = ctx.verifiers.of(job.data.proofSystem);
  const node = proofNodeOf(job.data, children);
  const submitted = { proof: proof.toLowerCase() as Hex, publicInputs: [...publicInputs] };
  let valid: boolean;
  const verifying = performance.now();
  try {
    valid = await verdictInTime(ctx, system, node, submitted, arrival);
  } catch (err) {
    // The verifier itself failed (not a verdict on the proof): nothing is credited or
    // penalized, and the lease stays the worker's to submit again. One that could not run or
    // gave no verdict in time is the relay's unavailability: the lease, which its worker left to
    // the result to keep, is kept from the result's arrival, as an accepted proof's is.
    await ctx.broker.heartbeat(lease, arrivedAgoMs(arrival)).catch(() => null);
    if (err instanceof ProofSystemUnavailable) {
      throw new DomainError(
        "UNAVAILABLE",
        `the ${system.name} verifier is unavailable (${err.message}); the lease is still yours, submit the result again`,
        undefined,
        { cause: err },
      );
    }
    throw new InvariantError(`the ${system.name} verifier failed`, { cause: err });
  }
  ctx.metrics.stepDone("verify", verifying);
  const now = ctx.now();
  if (!valid) {
    const outcome = await ctx.broker.rejectProvingJobResult(lease);
    if (outcome.lost) {
      ctx.metrics.proofsRejected.inc({ reason: "lease_lost" });
      throw new DomainError("LEASE_LOST", `the lease on ${jobId} lapsed; nothing was recorded`);
    }
    const status = outcome.status === "failed" ? "failed" : "queued";
    const taken = await ctx.prisma.$transaction(async (tx) => {
      // Up to INVALID_PROOF_PENALTY_WEI of the operator's free collateral is burned.
      const taken = await chargePenalty(tx, {
        kind: "invalid_proof",
        blockNumber: block,
        jobId,
        operator: session.operator,
        workerId: session.workerName,
        maxWei: ctx.settings.invalidProofPenaltyWei,
        onChain: ctx.settings.collateral === "chain",
        nowMs: now,
      });
      // Failed for good under this lease (the broker checked its lock): the row says so by its
      // id, even under a later stamp (Redis's clock stepped back).
      if (status === "failed") await markFailed(tx, [jobId]);
      else await endLease(tx, asRecorded(lease), status);
      return taken;
    });
    ctx.metrics.proofsRejected.inc({ reason: "invalid_proof" });
    ctx.metrics.penalized("invalid_proof", taken);
    if (outcome.status !== "failed") ctx.metrics.noteReady(jobId, ctx.now());
    throw new DomainError(
      "INVALID_PROOF",
      outcome.status === "failed"
        ? "the proof does not verify; the job reached its attempt cap and failed"
        : "the proof does not verify; the job was given back to the queue",
    );
  }
  const output = system.outputOf(node, submitted).toLowerCase() as Hex;
  if (system.name !== "sim") {
    // Stored before the completion, so an accepted proof is never missing from the store. A
    // completion refused for a lost lease leaves a verified proof of the node there, never
    // served before the node is proven; the store keeps a node's first verified proof, which
    // proves the same public inputs and output as any other.
    await ctx.proofStore.put(
      {
        jobId,
        blockNumber: block,
        proofSystem: system.name,
        circuit: system.circuitOf(job.data.type),
        proof: submitted.proof,
        publicInputs: submitted.publicInputs,
        output,
      },
      now,
    );
  }
  // What travels on to the parent and into ProofJob.proof: the node's public output (for the
  // simulated system, the proof itself).
  const result = {
    proof: output,
    operator: session.operator,
    worker: session.workerName,
  };
  const isRoot = rootJobTypes.includes(job.data.type);
  const completed = isRoot ? undefined : accepted;
  const completing = performance.now();
  try {
    await ctx.broker
      .reportProvingJobSuccess(lease, result, affinityNote(ctx, session, job), job, completed)
      .catch(async (err: unknown) => {
        // The lock ran out while the relay verified or waited: if the result arrived in time
        // and the lapse is unswept, the lease is revived and the completion tried once more.
        if (!(err instanceof LeaseLostError)) throw err;
        if ((await ctx.broker.heartbeat(lease, arrivedAgoMs(arrival))) === null) throw err;
        await ctx.broker.reportProvingJobSuccess(lease, result, undefined, job, completed);
      });
  } catch (err) {
    if (err instanceof LeaseLostError) {
      ctx.metrics.proofsRejected.inc({ reason: "lease_lost" });
      throw new DomainError("LEASE_LOST", `the lease on ${jobId} was lost; nothing was credited`);
    }
    throw err;
  }
  ctx.metrics.stepDone("complete", completing);
  const marking = performance.now();
  await ctx.jobMarks.submit({ kind: "proven", jobId, blockNumber: block, isRoot, ...result });
  ctx.metrics.stepDone("proof_mark", marking);
  if (isRoot) {
    ctx.registry.invalidate();
    accepted?.();
  }
  ctx.metrics.proofsVerified.inc({ job_type: job.data.type });
  ctx.metrics.proofTime.observe(
    { job_type: job.data.type },
    Math.max(0, ctx.now() - lease.leasedAt) / 1000,
  );
  return { status: "accepted" as const };
}

/**
 * A worker gives a job up. Retryable: the job goes back to the queue, but each worker may do
 * that only MAX_RETRYABLE_FAILS_PER_WORKER times per job (and all of an operator's worker ids
 * together MAX_JOB_FAILS_PER_OPERATOR times); at the bound it is no longer offered that job
 * (others still are). Every retryable fail also counts toward the job's MAX_JOB_ATTEMPTS, at
 * which it is failed for good (`{ status: "failed" }`). Not retryable: the job is failed (the
 * block takes the deadline path, or in open proving the aggregator re-issues it, a bounded
 * number of times) and the worker, having said it cannot prove it, is never offered it again.
 */
export async function failJob(
  ctx: RelayContext,
  session: WorkerSession,
  jobId: string,
  reason: string,
  retryable: boolean,
  arrival?: Arrival,
) {
  const lease = await ownLease(ctx, session, jobId);
  // The row is marked before BullMQ has the job back (a waiting worker may lease it at once), so
  // that a job failed for good is `failed` in its row before anything sees it gone from the
  // queue. The lease may have been lost meanwhile: a fail for good is then not marked at all (the
  // broker renews the lock first, so it cannot lapse before the move), and a give-back's endLease
  // leaves a later lease's row alone. A give-back's row the database cannot take now is left as
  // it is (the job's next lease marks it again), as a release's: with Postgres away, a worker
  // whose fail were refused would let its lease lapse, a withholding it did not commit.
  let marked = false;
  const report = () =>
    ctx.broker.reportProvingJobError(lease, reason, retryable, async (status) => {
      const mark = endLease(ctx.prisma, asRecorded(lease), status);
      marked = await (status === "queued" ? mark.catch(() => false) : mark);
    });
  let outcome = await report();
  // Arrived in time but handled after the lock ran out (the relay's lateness): revived, retried.
  if (outcome.lost && (await ctx.broker.heartbeat(lease, arrivedAgoMs(arrival))) !== null) {
    outcome = await report();
  }
  // The lease had lapsed: this was not a fail of this worker's, so it does not count.
  if (outcome.lost) throw new DomainError("LEASE_LOST", `the lease on ${jobId} lapsed`);
  if (outcome.status === "failed") {
    // Failed for good under this lease (BullMQ checked its lock): the row says so even if its
    // stamp is later (Redis's clock stepped back) and endLease left it.
    if (!marked) await markFailed(ctx.prisma, [jobId]);
    return { status: "failed" as const };
  }
  ctx.metrics.noteReady(jobId, ctx.now());
  // How many more times this worker may hand this job back; at 0 it is not offered it again.
  return { status: "requeued" as const, retriesLeft: outcome.retriesLeft };
}

/**
 * A worker stopping (SIGTERM) releases a job it has not finished: the job goes back to its queue
 * as if never leased, counted toward no attempt cap, no bar of the worker or its operator, and no
 * penalty; stopping is not failing. A lease already lapsed is LEASE_LOST (the lapse decides).
 */
export async function releaseJob(ctx: RelayContext, session: WorkerSession, jobId: string) {
  const lease = await ownLease(ctx, session, jobId);
  // A stopping worker holds at most its capacity: past that many releases in one session, a
  // "release" is a worker handing jobs back for free, and it counts as the fail it is.
  if ((await releasesWith(ctx, session, lease.token)) > session.capacity) {
    return failJob(ctx, session, jobId, "released past the session's capacity", true);
  }
  // BullMQ first: a release it refuses (the lease lapsed, or another request released it)
  // changes nothing, and a stopping worker's job goes back even while Postgres is away (its lease
  // would otherwise lapse as a withholding once the worker is gone).
  if (!(await ctx.broker.returnUnheardJob(lease))) {
    throw new DomainError("LEASE_LOST", `the lease on ${jobId} lapsed`);
  }
  // Counted once it happened: a release that failed (an error the worker retries) or was refused
  // is none of the session's, and one sent twice at once is one lease released. A count Redis
  // fails now is lost, not the release: answered as an error, it would be sent again and refused.
  await countRelease(ctx, session, lease.token).catch(() => {});
  // Then the row (endLease never touches a later lease's). One the database cannot take now is
  // left as it is: the job's next lease marks it again.
  await endLease(ctx.prisma, asRecorded(lease), "queued").catch(() => false);
  return { status: "released" as const };
}

/**
 * A worker signs out (its agent stopping): the session takes no new lease from now on, on any
 * relay, and each lease it holds, but for the jobs it names in `keep` (those it is still running,
 * to hand in or give back itself), goes back to the queue with no lapse and no penalty. Such a
 * lease is one the agent never heard of: a long poll the relay answered with a job as the agent
 * cut it short, after the answer was handed to the socket, so the relay could not tell it went
 * unread (watchClient gives back the rest). Without this it would lapse, as withholding, against
 * an operator who only stopped its agent.
 *
 * Redis first: the mark that no broker reserves or records a lease for the session again, and
 * the broker's record of its most recent leases, which every relay shares (a lease recorded
 * after the mark is refused, so none escapes the list). Then the job rows marked leased to the
 * worker, for an older lease whose own hand-back failed (once the agent has stopped, it signs out
 * again keeping nothing). Each is given back as releaseJob gives back a stopping worker's job,
 * within the same bound: a stopping agent holds at most its capacity, handed back or found here.
 * Postgres away, or a lease that fails to go back, does not stop the others; the call then
 * fails, and the next one finds only what is left.
 */
export async function endSession(
  ctx: RelayContext,
  session: WorkerSession,
  keep: readonly string[] = [],
) {
  const recent = await ctx.broker.endSession(
    session.id,
    heldLeaseGraceMs(ctx) + SIGN_OUT_MARGIN_MS,
  );
  let failure: unknown;
  let rows: { id: string }[] = [];
  const now = BigInt(ctx.now());
  // The row first (again on a sign-out sent again, should it have failed: its condition makes
  // that a no-op otherwise), then the object this relay's session cache holds: its token is
  // refused here at once for new leases, and a long poll of the session waiting for its turn
  // takes nothing (gatedAttempt). Other relays read the row again within their cache's
  // lifetime; until then Redis refuses the session any slot.
  await ctx.prisma.workerSession
    .updateMany({ where: { id: session.id, expiresAt: { gt: now } }, data: { expiresAt: now } })
    .catch((err: unknown) => {
      failure ??= err;
    });
  if (session.expiresAt > now) session.expiresAt = now;
  try {
    rows = await ctx.prisma.proofJob.findMany({
      where: { status: "leased", operator: session.operator, workerId: session.workerName },
      select: { id: true },
    });
  } catch (err) {
    failure ??= err;
  }
  const kept = new Set(keep);
  let released = 0;
  for (const id of new Set([...recent, ...rows.map((r) => r.id)])) {
    if (kept.has(id)) continue;
    try {
      if (!(await ctx.broker.leaseOf(session.id, id))) continue;
      await releaseJob(ctx, session, id);
      released++;
    } catch (err) {
      // Lapsed or taken meanwhile (the lapse decides, as for any release), or no longer there.
      if (err instanceof DomainError && (err.code === "LEASE_LOST" || err.code === "JOB_NOT_FOUND"))
        continue;
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
  return { sessionId: session.id, released };
}

/** A sign-out is kept in Redis this much past the session's held-lease grace. */
const SIGN_OUT_MARGIN_MS = 10 * 60_000;

const releasedKey = (ctx: RelayContext, session: WorkerSession) =>
  `${ctx.fabric.options.prefix}:released:${session.id}`;

/**
 * How many leases the session will have released with this one's (`token`) release: those
 * released so far (kept in Redis while the session lives, by token), and this one unless it is
 * among them. A job leased and released again is a new lease, and counts again.
 */
async function releasesWith(ctx: RelayContext, session: WorkerSession, token: string) {
  const key = releasedKey(ctx, session);
  const out = (await ctx.fabric.redis.multi().scard(key).sismember(key, token).exec())!;
  return Number(out[0]![1]) + (Number(out[1]![1]) === 1 ? 0 : 1);
}

/** Records the release of the session's lease `token` (see releasesWith). */
async function countRelease(ctx: RelayContext, session: WorkerSession, token: string) {
  const key = releasedKey(ctx, session);
  const ttlMs = Math.max(Number(session.expiresAt) + heldLeaseGraceMs(ctx) - ctx.now(), 0) + 60_000;
  await ctx.fabric.redis.multi().sadd(key, token).pexpire(key, ttlMs).exec();
}

/**
 * A lease the worker never heard of (it left during the long poll, or the answer could not be
 * written): the job goes straight back, uncounted and unpenalized, as if never leased; its row
 * goes back to queued unless it moved on.
 */
export async function giveBackUnheard(ctx: RelayContext, session: WorkerSession, jobId: string) {
  const lease = await ctx.broker.leaseOf(session.id, jobId);
  if (lease) await returnUnheard(ctx, lease);
}

/**
 * An unheard lease's job back in its queue, and its row back to queued (as giveBackUnheard).
 * Redis failing the give-back (a blip) is retried in the background until the lease would have
 * run out: given up on, the lease would lapse later as withholding held against a worker that
 * never heard of it.
 */
async function returnUnheard(ctx: RelayContext, lease: Lease) {
  let back: boolean;
  try {
    back = await ctx.broker.returnUnheardJob(lease);
  } catch {
    const later = { back: false };
    void retryUntilDone(async () => {
      later.back = await ctx.broker.returnUnheardJob(lease);
    }, lease.expiresAt)
      .then(() => (later.back ? endLease(ctx.prisma, asRecorded(lease), "queued") : undefined))
      .catch(() => {});
    return;
  }
  if (!back) return; // lapsed meanwhile: the lapse decides
  await endLease(ctx.prisma, asRecorded(lease), "queued");
}

/**
 * BullMQ found a lease lapsed (the job is back in its queue): the broker claims the lapsed
 * records. A lapse is forgiven (the row goes back to queued, nothing else) when no relay was
 * present through the lease's whole last window, so no relay could have taken the worker's
 * heartbeats (a restart or outage of every relay); with several relays, one that stayed up is
 * enough for the lapse to be the worker's. Otherwise it is withholding: recorded against the
 * worker and its operator, taking up to WITHHOLD_PENALTY_WEI of the operator's available
 * collateral (burned), after the broker cooled the worker down on the job and counted the lapse
 * toward its bars and the job's attempt cap.
 */
export async function onLeaseLapsed(ctx: RelayContext, jobId: string) {
  const block = parseJobId(jobId)?.blockNumber ?? null;
  for (const { lease, forgiven } of await ctx.broker.claimTimedOutJob(jobId)) {
    ctx.metrics.noteReady(jobId, ctx.now());
    if (forgiven) {
      await endLease(ctx.prisma, asRecorded(lease), "queued");
      ctx.metrics.leasesLapsed.inc({ outcome: "forgiven" });
      continue;
    }
    const now = ctx.now();
    const taken = await ctx.prisma.$transaction(async (tx) => {
      const taken = await chargePenalty(tx, {
        kind: "withholding",
        blockNumber: block,
        jobId,
        operator: lease.operator,
        workerId: lease.workerName,
        maxWei: ctx.settings.withholdPenaltyWei,
        onChain: ctx.settings.collateral === "chain",
        nowMs: now,
      });
      await endLease(tx, asRecorded(lease), "queued");
      return taken;
    });
    ctx.metrics.leasesLapsed.inc({ outcome: "penalized" });
    ctx.metrics.penalized("withholding", taken);
  }
}
