// The worker gateway: lease (long poll), heartbeat, result, fail. BullMQ's lock is the lease;
// the LeaseBook records who holds it. Proofs are checked by recomputation before anything is
// credited, and a result is credited in the same Postgres transaction that completes the job in
// BullMQ: if the lock was lost meanwhile the transaction rolls back and nothing is credited.
import { randomBytes, randomUUID } from "node:crypto";
import { DomainError, type JobType, rootJobTypes, verifySimProof } from "@prover-boost/core";
import { accounts, takeUpTo, type WorkerSession } from "@prover-boost/db";
import {
  type AffinityNote,
  type Job,
  type Lease,
  LeaseLostError,
  type Lessee,
  leaseIdOf,
  lesseeKey,
  type ProofJobData,
  parentQueueOf,
  parseJobId,
  type QueueKind,
  queueFor,
} from "@prover-boost/queue";
import type { RelayContext } from "../context.ts";

const MAX_POLL_SLICE_MS = 1000;

function kindsOf(types: readonly string[]): QueueKind[] {
  return [...new Set(types.map((t) => queueFor(t as JobType)))];
}

/** The worker as the fabric knows it: bars on jobs it failed, and its subtree affinity. */
function lesseeOf(ctx: RelayContext, session: WorkerSession): Lessee {
  return {
    worker: lesseeKey(session.operator, session.workerName),
    affinity: ctx.env.SCHEDULING === "affinity",
    nowMs: ctx.now(),
  };
}

export async function leaseJob(
  ctx: RelayContext,
  session: WorkerSession,
  waitMs: number,
  signal: AbortSignal,
) {
  const deadline = ctx.now() + waitMs;
  const kinds = kindsOf(session.jobTypes);
  let since = ctx.wakeups.mark();
  let attempt = await tryLeaseOnce(ctx, session, kinds);
  for (;;) {
    if (attempt.leased) return attempt.leased;
    const left = deadline - ctx.now();
    if (left <= 0 || signal.aborted) return null;
    const scope = { id: session.id, kinds, blocks: attempt.blocks };
    const wake = await ctx.wakeups.wait(scope, since, Math.min(left, MAX_POLL_SLICE_MS), signal);
    // A caller that went away is not leased a job it would never hear of.
    if (signal.aborted) return null;
    since = ctx.wakeups.mark();
    attempt = await tryLeaseOnce(ctx, session, kinds);
    // Woken for a job, it found nothing but passed over jobs it may not have: the job may be
    // another's to take, so the next waiter is woken for it.
    if (wake && !attempt.leased && attempt.passedOver) ctx.wakeups.passOn(wake, session.id);
  }
}

/**
 * One look at every block this worker may lease from: the job leased, or none, with the blocks
 * looked at and whether jobs it may not have were passed over.
 */
async function tryLeaseOnce(
  ctx: RelayContext,
  session: WorkerSession,
  kinds: QueueKind[],
): Promise<{
  leased?: Awaited<ReturnType<typeof describeLeasedJob>>;
  blocks: Set<number>;
  passedOver: boolean;
}> {
  const now = ctx.now();
  const placeholder = `slot:${randomUUID()}`;
  // Read while the slot is reserved (awaited, or its failure handled, below).
  const eligible = ctx.registry.eligible(session.operator, now);
  eligible.catch(() => {});
  const reserved = await ctx.leases.reserveSlot(
    session.id,
    session.capacity,
    placeholder,
    now,
    now + 30_000,
  );
  if (!reserved) {
    throw new DomainError(
      "CAPACITY_EXCEEDED",
      `this worker already holds ${session.capacity} leases`,
    );
  }
  const lessee = lesseeOf(ctx, session);
  const blocks = new Set<number>();
  let passedOver = false;
  try {
    for (const block of await eligible) {
      blocks.add(block.number);
      const token = `${session.id}.${randomBytes(8).toString("hex")}`;
      const outcome = await ctx.fabric.take(block.number, kinds, token, lessee);
      passedOver ||= outcome.passedOver;
      if (!outcome.taken) continue;
      const { job, kind } = outcome.taken;
      if (!session.jobTypes.includes(job.data.type)) {
        // Root kinds share a queue; a worker that did not declare this root type gives it back.
        await ctx.fabric.release(block.number, kind, job.id!, token, session.id);
        passedOver = true;
        continue;
      }
      const leasedAt = ctx.now();
      const lease: Lease = {
        jobId: job.id!,
        queue: kind,
        sessionId: session.id,
        operator: session.operator,
        workerName: session.workerName,
        token,
        leasedAt,
        expiresAt: leasedAt + ctx.env.LEASE_MS,
      };
      try {
        const [, proofs] = await Promise.all([
          ctx.leases.record(lease, placeholder),
          ctx.fabric.childProofs(job),
        ]);
        const leased = await describeLeasedJob(ctx, lease, session, job, proofs);
        return { leased, blocks, passedOver };
      } catch (err) {
        // The request fails, so the worker never hears of this lease: the job goes straight
        // back to the queue rather than lapsing later as withholding held against the worker.
        await ctx.fabric.release(block.number, kind, job.id!, token).catch(() => {});
        await ctx.leases.drop(lease).catch(() => {});
        throw err;
      }
    }
  } catch (err) {
    await ctx.leases.releaseSlot(session.id, placeholder);
    throw err;
  }
  await ctx.leases.releaseSlot(session.id, placeholder);
  return { blocks, passedOver };
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
  if (ctx.env.SCHEDULING !== "affinity") return undefined;
  const parentId = job.parent?.id;
  const canTakeParent =
    parentId !== undefined && kindsOf(session.jobTypes).includes(parentQueueOf(parentId));
  return {
    worker: lesseeOf(ctx, session).worker,
    nowMs: ctx.now(),
    holdMs: canTakeParent ? ctx.env.AFFINITY_HOLD_MS : 0,
  };
}

async function describeLeasedJob(
  ctx: RelayContext,
  lease: Lease,
  session: WorkerSession,
  job: Job<ProofJobData>,
  proofs: (`0x${string}` | undefined)[],
) {
  // The tree view's record (group-committed); conditional so it can never undo a proven job.
  await ctx.jobMarks.submit({
    kind: "leased",
    jobId: lease.jobId,
    blockNumber: job.data.blockNumber,
    operator: session.operator,
    worker: session.workerName,
    leaseId: leaseIdOf(lease.token),
  });
  return {
    id: lease.jobId,
    type: job.data.type,
    blockNumber: job.data.blockNumber,
    level: job.data.level,
    index: job.data.index,
    inputs: job.data.inputs,
    children: job.data.children.map((id, i) => ({ id, proof: proofs[i] ?? "0x" })),
    leaseExpiresAt: lease.expiresAt,
  };
}

/**
 * Forgets a lease its holder found lost, unless it lapsed: a lapsed lease is left for the lapse
 * handler (onLeaseLapsed), which records the withholding. A late heartbeat, result or fail must
 * not make a lapse go unrecorded.
 */
async function forgetLostLease(ctx: RelayContext, lease: Lease): Promise<void> {
  if (lease.expiresAt > ctx.now()) await ctx.leases.drop(lease);
}

/** The caller's live lease on a job, or LEASE_LOST / JOB_NOT_FOUND. */
async function ownLease(ctx: RelayContext, session: WorkerSession, jobId: string): Promise<Lease> {
  const pos = parseJobId(jobId);
  if (!pos) throw new DomainError("JOB_NOT_FOUND", `no job ${jobId}`);
  const lease = await ctx.leases.get(jobId);
  if (!lease || lease.sessionId !== session.id) {
    throw new DomainError("LEASE_LOST", `job ${jobId} is not leased to this worker`);
  }
  return lease;
}

export async function heartbeat(ctx: RelayContext, session: WorkerSession, jobId: string) {
  const lease = await ownLease(ctx, session, jobId);
  const block = parseJobId(jobId)!.blockNumber;
  const ok = await ctx.fabric.extend(block, lease.queue as QueueKind, jobId, lease.token);
  if (!ok) {
    await forgetLostLease(ctx, lease);
    throw new DomainError("LEASE_LOST", `the lease on ${jobId} lapsed`);
  }
  const leaseExpiresAt = ctx.now() + ctx.env.LEASE_MS;
  await ctx.leases.extend(lease, leaseExpiresAt);
  return { leaseExpiresAt };
}

/**
 * A worker hands back a proof. It is checked by recomputation from the job's own data and its
 * children's proofs (both in Redis). Then BullMQ completes the job, which succeeds only while
 * this worker's lock is live: a lost lease is refused there and nothing is credited. Then
 * Postgres records the proof and its credit in one statement; should the relay die between the
 * two, the aggregator's reconciler copies the result from BullMQ (see reconcile.ts).
 */
export async function submitResult(
  ctx: RelayContext,
  session: WorkerSession,
  jobId: string,
  proof: string,
) {
  const lease = await ownLease(ctx, session, jobId);
  const block = parseJobId(jobId)!.blockNumber;
  const kind = lease.queue as QueueKind;
  const read = await ctx.fabric.jobWithChildProofs(block, kind, jobId);
  if (!read) {
    await forgetLostLease(ctx, lease);
    throw new DomainError("LEASE_LOST", `job ${jobId} is no longer leasable`);
  }
  const { job, proofs: children } = read;
  const valid =
    children.every((c) => c !== undefined) &&
    verifySimProof(
      {
        type: job.data.type,
        blockNumber: job.data.blockNumber,
        level: job.data.level,
        index: job.data.index,
        inputs: job.data.inputs,
        children: children as `0x${string}`[],
      },
      proof,
    );
  const now = ctx.now();
  if (!valid) {
    await ctx.prisma.$transaction([
      ctx.prisma.penalty.create({
        data: {
          id: randomUUID(),
          blockNumber: block,
          jobId,
          operator: session.operator,
          workerId: session.workerName,
          kind: "invalid_proof",
          amount: "0",
          createdAt: BigInt(now),
        },
      }),
      ctx.prisma.proofJob.updateMany({
        where: { id: jobId, status: "leased", leaseId: leaseIdOf(lease.token) },
        data: { status: "queued" },
      }),
    ]);
    await ctx.fabric.release(block, kind, jobId, lease.token, session.id);
    await ctx.leases.drop(lease);
    throw new DomainError(
      "INVALID_PROOF",
      "the proof does not verify; the job was given back to the queue",
    );
  }
  const result = {
    proof: proof.toLowerCase() as `0x${string}`,
    operator: session.operator,
    worker: session.workerName,
  };
  try {
    await ctx.fabric.complete(
      block,
      kind,
      jobId,
      lease.token,
      result,
      affinityNote(ctx, session, job),
      job,
    );
  } catch (err) {
    await forgetLostLease(ctx, lease);
    if (err instanceof LeaseLostError) {
      throw new DomainError("LEASE_LOST", `the lease on ${jobId} was lost; nothing was credited`);
    }
    throw err;
  }
  await Promise.all([
    ctx.jobMarks.submit({
      kind: "proven",
      jobId,
      blockNumber: block,
      isRoot: rootJobTypes.includes(job.data.type),
      ...result,
    }),
    ctx.leases.drop(lease),
  ]);
  if (rootJobTypes.includes(job.data.type)) ctx.registry.invalidate();
  return { status: "accepted" as const };
}

/**
 * A lease whose answer never reached its worker (it left during the long poll, or the response
 * could not be written): the job goes straight back to the queue, uncounted and unpenalized, as
 * if it had never been leased. Its tree-view row goes back to queued unless it moved on.
 */
export async function giveBackUnheard(ctx: RelayContext, session: WorkerSession, jobId: string) {
  const lease = await ctx.leases.get(jobId);
  if (!lease || lease.sessionId !== session.id) return;
  const block = parseJobId(jobId)!.blockNumber;
  const ok = await ctx.fabric.release(block, lease.queue as QueueKind, jobId, lease.token);
  if (!ok) return; // it lapsed meanwhile: the lapse handler decides
  await ctx.prisma.proofJob.updateMany({
    where: { id: jobId, status: "leased", leaseId: leaseIdOf(lease.token) },
    data: { status: "queued" },
  });
  await ctx.leases.drop(lease);
}

/**
 * A worker gives a job up. Retryable: the job goes back to the queue, but each worker may do
 * that only MAX_RETRYABLE_FAILS_PER_WORKER times per job; at the bound it is no longer offered
 * that job (others still are), so a worker that keeps failing one job cannot loop on it. Not
 * retryable: the job is failed (the block takes the deadline path, or in open proving the
 * aggregator re-issues it) and the worker, having said it cannot prove it, is never offered it
 * again, which also bounds the open-proving re-issue loop by the number of workers. When every
 * worker that may take a job is barred from it, it simply waits in the queue: a worker that
 * signs in later may still prove it, and the proof deadline (slash, open proving) is the
 * backstop, as for any job nobody proves.
 */
export async function failJob(
  ctx: RelayContext,
  session: WorkerSession,
  jobId: string,
  reason: string,
  retryable: boolean,
) {
  const lease = await ownLease(ctx, session, jobId);
  const block = parseJobId(jobId)!.blockNumber;
  const kind = lease.queue as QueueKind;
  const worker = lesseeOf(ctx, session).worker;
  const max = ctx.env.MAX_RETRYABLE_FAILS_PER_WORKER;
  // Counted before the job is back in the queue, so this worker's other lease calls (capacity
  // above 1, other relays) already see the bar when it becomes leasable again.
  const attempt = retryable
    ? await ctx.fabric.attempts.recordRetryable(block, jobId, worker, max)
    : await ctx.fabric.attempts.recordGiveUp(block, jobId, worker);
  // Mark the row first, while this worker still holds the job: once BullMQ has it back a
  // waiting worker may lease it at once, and its "leased" must not be overwritten.
  const mine = { id: jobId, status: "leased", leaseId: leaseIdOf(lease.token) };
  await ctx.prisma.proofJob.updateMany({
    where: mine,
    data: { status: retryable ? "queued" : "failed" },
  });
  const ok = retryable
    ? await ctx.fabric.release(block, kind, jobId, lease.token, session.id)
    : await ctx.fabric.fail(block, kind, jobId, lease.token, reason);
  await (ok ? ctx.leases.drop(lease) : forgetLostLease(ctx, lease));
  if (!ok) {
    // The lease had lapsed: this was not a fail of this worker's, so it does not count.
    await ctx.fabric.attempts.undo(block, jobId, worker, attempt);
    throw new DomainError("LEASE_LOST", `the lease on ${jobId} lapsed`);
  }
  if (!retryable) return { status: "failed" as const };
  // How many more times this worker may hand this job back; at 0 it is not offered it again.
  const retriesLeft = attempt.barred ? 0 : Math.max(0, max - attempt.fails);
  return { status: "requeued" as const, retriesLeft };
}

/**
 * A lease lapsed (BullMQ moved the job back to wait): forget it and record the withholding
 * against the worker and its operator, taking up to WITHHOLD_PENALTY_WEI of the operator's
 * available collateral (burned). A lease last renewed before this relay process started (its
 * expiry is less than LEASE_MS after the start) may have lapsed only because no relay was there
 * to take its heartbeats, during a restart or an outage: that one is given back without a
 * penalty. (In a deployment of several relays, a lapse caught by one that restarted meanwhile is
 * forgiven too; the relay cannot tell which of them the worker tried.) A penalized lapse also
 * counts toward the worker's bound of hand-backs of that job.
 */
export async function onLeaseLapsed(ctx: RelayContext, jobId: string) {
  const now = ctx.now();
  const lease = await ctx.leases.get(jobId);
  // The job may already be leased again (the map is keyed by job): only a lapsed lease is
  // the withholder's; a live one belongs to its new holder and is left alone.
  if (!lease || lease.expiresAt > now) return;
  await ctx.leases.drop(lease);
  const block = parseJobId(jobId)?.blockNumber ?? null;
  // Only if the row still names the lapsed lease: the job may already be leased again, even by
  // the same worker id signed in anew.
  const requeue = { id: jobId, status: "leased", leaseId: leaseIdOf(lease.token) };
  if (lease.expiresAt < ctx.startedAt + ctx.env.LEASE_MS) {
    await ctx.prisma.proofJob.updateMany({ where: requeue, data: { status: "queued" } });
    return;
  }
  // The job is already back in the queue, so first keep the worker off it: for LEASE_MS it is
  // not offered that job (others are; then it may try again), and the lapse counts as a
  // retryable hand-back, so at MAX_RETRYABLE_FAILS_PER_WORKER it is not offered it any more.
  if (block !== null) {
    const worker = lesseeKey(lease.operator, lease.workerName);
    await ctx.fabric.attempts.coolDown(block, jobId, worker, now, now + ctx.env.LEASE_MS);
    await ctx.fabric.attempts.recordRetryable(
      block,
      jobId,
      worker,
      ctx.env.MAX_RETRYABLE_FAILS_PER_WORKER,
    );
  }
  await ctx.prisma.$transaction(async (tx) => {
    const taken = await takeUpTo(
      tx,
      "penalty",
      accounts.available(lease.operator),
      accounts.burn,
      ctx.env.WITHHOLD_PENALTY_WEI,
      { nowMs: now, blockNumber: block, ref: jobId },
    );
    await tx.penalty.create({
      data: {
        id: randomUUID(),
        blockNumber: block,
        jobId,
        operator: lease.operator,
        workerId: lease.workerName,
        kind: "withholding",
        amount: taken.toString(),
        createdAt: BigInt(now),
      },
    });
    await tx.proofJob.updateMany({ where: requeue, data: { status: "queued" } });
  });
}
