// Helpers shared by the gateway integration tests (withholding, capacity, priority, crash, fail):
// open a block and wait until its tree is out, sign workers in, prove leased jobs, compute the
// expected root proof, and read BullMQ's view of a job.
import { type JobType, planTree, rootJobTypes, simProof } from "@prover-boost/core";
import { type QueueKind, queueFor } from "@prover-boost/queue";
import {
  type LeasedJob,
  newWorkerLogin,
  type RelayClient,
  RelayError,
  signWorkerLogin,
  type WorkerLoginJson,
} from "@prover-boost/sdk";
import type { LocalAccount } from "viem";
import { allJobTypes, domain, openAuction, signedBid } from "../fixtures.ts";
import { eventually, type Stack } from "../harness.ts";

export interface Signed {
  client: RelayClient;
  token: string;
  sessionId: string;
  workerId: string;
  operator: `0x${string}`;
}

/** Signs a worker in and returns its client, token and session id. */
export async function signIn(
  stack: { client: RelayClient },
  operator: LocalAccount,
  workerId: string,
  opts: { jobTypes?: WorkerLoginJson["jobTypes"]; capacity?: number; tier?: number } = {},
): Promise<Signed> {
  const login: WorkerLoginJson = newWorkerLogin({
    operator: operator.address,
    workerId,
    capacity: opts.capacity ?? 1,
    jobTypes: opts.jobTypes ?? allJobTypes,
    ...(opts.tier !== undefined ? { tier: opts.tier } : {}),
  });
  const signature = await signWorkerLogin(operator, domain, login);
  const { token, sessionId } = await stack.client.createSession(login, signature, {
    cores: 4,
    memoryMb: 8192,
    gpus: 0,
  });
  return {
    client: stack.client.withToken(token),
    token,
    sessionId,
    workerId,
    operator: operator.address,
  };
}

/** The proof the relay expects for a leased job (sim scheme). */
export const proofOf = (job: LeasedJob) =>
  simProof({ ...job, inputs: job.inputs, children: job.children.map((c) => c.proof) });

/**
 * Leases with `client`, proving every job it is given, until it is given block `n`'s root:
 * returned leased, not proven.
 */
export async function leaseRootOf(client: RelayClient, n: number): Promise<LeasedJob> {
  for (;;) {
    const job = await client.lease(1000);
    if (!job) continue;
    if (job.blockNumber === n && rootJobTypes.includes(job.type)) return job;
    await client.submitResult(job.id, proofOf(job));
  }
}

/**
 * The relay's first step of accepting `root`'s proof only: BullMQ completes the job (where the
 * lease is checked), and the relay dies before recording it in Postgres.
 */
export async function completeInBullmqOnly(stack: Stack, root: LeasedJob): Promise<void> {
  const [lease] = await stack.relay.ctx.broker.recordsOf(root.id);
  await stack.relay.ctx.broker.reportProvingJobSuccess(lease!, {
    proof: proofOf(root),
    operator: lease!.operator,
    worker: lease!.workerName,
  });
}

/** The root proof of a block: it depends only on its transactions. */
export function expectedRoot(blockNumber: number, txs: readonly `0x${string}`[]) {
  return expectedProofs(blockNumber, txs).get(planTree(txs.length).root)!;
}

/** Every node's expected proof, by job id ("<block>-<level>-<index>"). */
export function expectedProofs(
  blockNumber: number,
  txs: readonly `0x${string}`[],
): Map<string, `0x${string}`> {
  const plan = planTree(txs.length);
  const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
  const out = new Map<string, `0x${string}`>();
  const proofOfKey = (key: string): `0x${string}` => {
    const n = byKey.get(key)!;
    const p = simProof({
      type: n.type,
      blockNumber,
      level: n.level,
      index: n.index,
      inputs: n.txIndex !== undefined ? [txs[n.txIndex]!] : [],
      children: n.children.map(proofOfKey),
    });
    out.set(`${blockNumber}-${n.level}-${n.index}`, p);
    out.set(key, p);
    return p;
  };
  proofOfKey(plan.root);
  return out;
}

export interface OpenBlockOptions {
  txCount?: number;
  /** The single bidder (wins); without one the auction ends unclaimed (open proving). */
  winner?: LocalAccount;
  /** Proof deadline, ms from now (default 10 minutes). */
  proofDeadlineInMs?: number;
  /** Bidding time, ms from now (default 1000 without a bid, 3000 with one). */
  biddingMs?: number;
}

/** Opens an auction, bids if asked, and waits until the block's tree is out. */
export async function openBlock(stack: Stack, blockNumber: number, opts: OpenBlockOptions = {}) {
  // Sign everything first so the bid lands well inside the bidding window.
  const bid = opts.winner ? await signedBid(opts.winner, blockNumber) : null;
  const now = Date.now();
  const open = await openAuction(blockNumber, {
    txCount: opts.txCount ?? 4,
    biddingClosesAt: now + (opts.biddingMs ?? (bid ? 3000 : 1000)),
    proofDeadline: now + (opts.proofDeadlineInMs ?? 600_000),
  });
  await stack.client.openAuction(open.auction, open.txs, open.signature);
  if (bid) await stack.client.submitBid(bid.quote, bid.signature);
  const stage = opts.winner ? "proving" : "open_proving";
  await eventually(async () => (await stack.client.getBlock(blockNumber)).stage === stage);
  // The stage moves before the fan-out's announcement reaches the relay: until it does, the
  // relay's cached view of the blocks being proven does not have this one yet.
  await eventually(async () =>
    (await stack.relay.ctx.registry.active(Date.now())).some((b) => b.number === blockNumber),
  );
  return open;
}

export type LeaseOutcome =
  | { status: 200; job: LeasedJob }
  | { status: 204 }
  | { status: number; code: string };

/** A lease call reduced to its status (and code), never throwing on a relay error. */
export async function tryLease(client: RelayClient, waitMs: number): Promise<LeaseOutcome> {
  try {
    const job = await client.lease(waitMs);
    return job ? { status: 200, job } : { status: 204 };
  } catch (err) {
    if (err instanceof RelayError) return { status: err.status, code: err.code };
    throw err;
  }
}

/** The relay error (status, code) a call ends with; fails if it succeeds. */
export async function relayError(
  call: Promise<unknown>,
): Promise<{ status: number; code: string }> {
  try {
    await call;
  } catch (err) {
    if (err instanceof RelayError) return { status: err.status, code: err.code };
    throw err;
  }
  throw new Error("expected the relay to refuse the call");
}

/**
 * Proves everything the given workers can lease until the block is paid. `before(job)` runs on
 * each leased job before its proof is submitted (assertions along the way).
 */
export async function proveUntilPaid(
  stack: { client: RelayClient },
  blockNumber: number,
  workers: RelayClient[],
  before: (job: LeasedJob) => Promise<void> | void = () => {},
  timeoutMs = 40_000,
) {
  return eventually(
    async () => {
      await Promise.all(
        workers.map(async (w) => {
          const job = await w.lease(300);
          if (!job) return;
          await before(job);
          await w.submitResult(job.id, proofOf(job));
        }),
      );
      const block = await stack.client.getBlock(blockNumber);
      return block.stage === "paid" ? block : null;
    },
    timeoutMs,
    0,
  );
}

export const kindOf = (type: JobType): QueueKind => queueFor(type);

/** BullMQ's state of a job ("active", "completed", "failed", ...), or "missing". */
export async function bullState(stack: Stack, blockNumber: number, type: JobType, id: string) {
  const job = await stack.relay.ctx.fabric.getJob(blockNumber, queueFor(type), id);
  return job ? await job.getState() : "missing";
}

/** Failed jobs of a block across its queues, as BullMQ counts them. */
export async function failedCount(stack: Stack, blockNumber: number) {
  const counts = await stack.relay.ctx.fabric.counts(blockNumber);
  return Object.values(counts).reduce((n, c) => n + (c.failed ?? 0), 0);
}

/** Heartbeats a lease every `everyMs` until the returned function is called. */
export function keepAlive(client: RelayClient, jobId: string, everyMs = 200): () => void {
  const timer = setInterval(() => void client.heartbeat(jobId).catch(() => {}), everyMs);
  return () => clearInterval(timer);
}

/**
 * A lapse made deterministic: BullMQ's lock on the job (the lease) is gone and every lease
 * record of the job is past its expiry, as when LEASE_MS passed with no heartbeat, before the
 * stalled checker has found it. (Only the lock gone, with the lease not yet expired, is a lock
 * the relay revives for an on-time heartbeat or result.) The relay's own loop delay is held at
 * 0 until the returned function is called: a request that reaches a relay running late counts
 * from before that delay (services/load.ts), and a loaded test machine must not turn the
 * lapse's refusal into a revival.
 */
export async function lapseLease(stack: Stack, jobId: string) {
  const { fabric, broker } = stack.relay.ctx;
  const [lease] = await broker.recordsOf(jobId);
  if (!lease) throw new Error(`job ${jobId} is not leased`);
  await fabric.redis.del(broker.lockKey(jobId, lease.queue as QueueKind));
  const key = broker.records.jobKey(jobId);
  const [seconds] = await fabric.redis.time();
  const past = Number(seconds) * 1000 - 1000;
  for (const [token, raw] of Object.entries(await fabric.redis.hgetall(key))) {
    await fabric.redis.hset(key, token, JSON.stringify({ ...JSON.parse(raw), expiresAt: past }));
  }
  const { lag } = stack.relay.ctx.load;
  lag.force(0);
  return () => lag.force(null);
}
