// startWorkers: validates the options, starts `workers` workers (each signs in and runs
// `capacity` lease loops) and returns a handle to stop them gracefully and read their counters.
import { setMaxListeners } from "node:events";
import { availableParallelism, hostname, totalmem } from "node:os";
import { jobTypes as allJobTypes, type JobType } from "@prover-boost/core";
import { privateKeyToAccount } from "viem/accounts";
import {
  DEFAULT_MAX_REJECTIONS,
  DEFAULT_WAIT_MS,
  HAND_BACK_BUDGET_MS,
  UNREADABLE_MAX,
} from "./defaults.ts";
import { errorMessage } from "./errors.ts";
import { pooledFetch } from "./http.ts";
import { SIGN_OUT_BUDGET_MS, WorkerSession } from "./session.ts";
import type {
  Hardware,
  WorkerEvent,
  WorkerLogger,
  WorkerOptions,
  WorkerPool,
  WorkerStats,
} from "./types.ts";
import { Worker } from "./worker.ts";

export { DEFAULT_WAIT_MS };
export const DEFAULT_GRACE_MS = 30_000;
const MAX_WAIT_MS = 30_000;
const WORKER_ID = /^[A-Za-z0-9._-]{1,64}$/;

const silentLogger: WorkerLogger = { info() {}, warn() {}, error() {}, debug() {} };

export function defaultHardware(): Hardware {
  return { cores: availableParallelism(), memoryMb: Math.round(totalmem() / 2 ** 20) };
}

/** The host name reduced to the characters a worker id may hold. */
export function defaultNamePrefix(): string {
  const name = hostname()
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .slice(0, 48);
  return name.length > 0 ? name : "worker";
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function resolveJobTypes(types: JobType[] | undefined): JobType[] {
  if (types === undefined) return [...allJobTypes];
  const unknown = types.filter((t) => !allJobTypes.includes(t));
  if (unknown.length > 0 || types.length === 0) {
    throw new RangeError(
      `jobTypes must be a non-empty list of ${allJobTypes.join(", ")}; got ${JSON.stringify(types)}`,
    );
  }
  return [...new Set(types)];
}

/**
 * Starts the workers. Resolves once they are started: each signs in and leases in the background,
 * retrying with backoff while the relay is unreachable (watch for the "signed_in" event).
 */
export async function startWorkers(options: WorkerOptions): Promise<WorkerPool> {
  const workers = positiveInt("workers", options.workers);
  const capacity = positiveInt("capacity", options.capacity ?? 1);
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  if (!Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > MAX_WAIT_MS) {
    throw new RangeError(`waitMs must be an integer in 0..${MAX_WAIT_MS}, got ${waitMs}`);
  }
  const jobTypes = resolveJobTypes(options.jobTypes);
  const tier = options.tier ?? 0;
  if (!Number.isInteger(tier) || tier < 0 || tier > 255) {
    throw new RangeError(`tier must be an integer in 0..255, got ${tier}`);
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(options.operatorKey)) {
    throw new TypeError("operatorKey must be a 32-byte hex private key (0x + 64 hex characters)");
  }
  const account = privateKeyToAccount(options.operatorKey);
  const prefix = options.namePrefix ?? defaultNamePrefix();
  const ids = Array.from({ length: workers }, (_, i) => `${prefix}-${i}`);
  const badId = ids.find((id) => !WORKER_ID.test(id));
  if (badId !== undefined) {
    throw new RangeError(`worker id ${JSON.stringify(badId)} must be 1-64 of A-Z a-z 0-9 . _ -`);
  }
  new URL(options.relayUrl); // throws on a malformed URL

  const logger = options.logger ?? silentLogger;
  const maxRejections = options.maxRejections ?? DEFAULT_MAX_REJECTIONS;
  /** Proofs rejected as invalid since the last one accepted, across the pool's workers. */
  let rejectedInARow = 0;
  /** Jobs leased in answers this agent could not read since the last proof accepted. */
  let unreadableInARow = 0;
  const emit = (e: WorkerEvent) => {
    // A permanent refusal (every worker signs the same terms): the whole pool stops, its jobs
    // handed back at once. Before the handler hears of it: a handler that stops the pool itself
    // (the command line's, with its drain) must not give the jobs in flight time to finish,
    // each another refusal.
    if (e.type === "fatal") stopping ??= stopPool(0, true);
    try {
      options.onEvent?.(e);
    } catch (err) {
      logger.error({ err: errorMessage(err), event: e.type }, "onEvent handler threw");
    }
    if (e.type === "proven") rejectedInARow = unreadableInARow = 0;
    if (e.type === "unreadable" && ++unreadableInARow === UNREADABLE_MAX) {
      // Each is handed back as a fail, which uses up the job's attempts: an agent that cannot
      // read its relay's answers (one of a newer contract) stops rather than fail every job.
      emit({
        type: "fatal",
        worker: e.worker,
        op: "lease",
        message:
          `${UNREADABLE_MAX} jobs in a row were leased in answers this agent cannot read, each ` +
          `handed back as a fail: stopping. Is the relay newer than this agent? The last: ${e.message}`,
      });
    }
    if (e.type === "rejected" && maxRejections > 0 && ++rejectedInARow === maxRejections) {
      // Every invalid proof is a penalty: a backend whose proofs the relay keeps refusing (another
      // circuit or prover version, a broken prover) stops here rather than pay for ever.
      emit({
        type: "fatal",
        worker: e.worker,
        op: "result",
        message:
          `${maxRejections} proofs in a row were rejected as invalid, each a penalty: stopping. ` +
          `Check that the backend proves the relay's circuits (its version, its proof system); ` +
          `the last refusal: ${e.message}`,
      });
    }
  };
  const stats: WorkerStats = { leased: 0, proven: 0, failed: 0, rejected: 0, lost: 0 };
  let stopping: Promise<void> | undefined;
  const stop = new AbortController();
  // Every worker's in-flight requests listen on this one signal: many listeners are expected.
  setMaxListeners(0, stop.signal);
  const http = options.fetch ? null : pooledFetch();
  const baseFetch = options.fetch ?? http!.fetch;
  const hardware = options.hardware ?? defaultHardware();

  const pool = ids.map((workerId) => {
    const session = new WorkerSession({
      workerId,
      relayUrl: options.relayUrl,
      account,
      capacity,
      jobTypes,
      tier,
      hardware,
      fetch: baseFetch,
      stopSignal: stop.signal,
      logger,
      emit,
    });
    return new Worker({
      workerId,
      backend: options.backend,
      session,
      logger,
      emit,
      stats,
      capacity,
      waitMs,
      stopSignal: stop.signal,
      ...(options.resultRetryBudgetMs !== undefined
        ? { resultRetryBudgetMs: options.resultRetryBudgetMs }
        : {}),
    });
  });
  logger.info(
    { operator: account.address, workers, capacity, jobTypes, backend: options.backend.name },
    "starting workers",
  );
  const running = Promise.all(pool.map((w) => w.run())).then(() => undefined);

  /** `refused`: stopping for a permanent refusal (fatal): no proof in hand is offered again. */
  const stopPool = async (
    graceMs: number,
    refused = false,
    signOutMs: number = SIGN_OUT_BUDGET_MS.stopped,
    handBackMs: number = HAND_BACK_BUDGET_MS,
  ) => {
    stop.abort(new Error("worker pool stopping"));
    // Signed out at once, beside the drain, keeping the jobs still running: a job the relay
    // leased as the stop cut a long poll short goes back now, not after the drain (when its
    // lease could have lapsed as withholding).
    const targets = pool.map((w) => w.signOutTargets());
    // (Not with no drain to stand beside: the sign-out once stopped follows at once.)
    const early = Math.min(SIGN_OUT_BUDGET_MS.atStop, graceMs);
    const signedOut =
      early >= 100
        ? Promise.all(pool.map((w, i) => w.signOut(targets[i]!, true, early)))
        : Promise.resolve([]);
    const inFlight = pool.reduce((n, w) => n + w.inFlight, 0);
    logger.info({ inFlight, graceMs }, "stopping: no new leases; letting in-flight jobs finish");
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    });
    const overdue = await Promise.race([running.then(() => false), graceOver]);
    clearTimeout(timer);
    if (overdue) {
      const left = pool.reduce((n, w) => n + w.inFlight, 0);
      logger.warn({ jobs: left, handBackMs }, "grace period over; handing unfinished jobs back");
      const giveUpAt = Date.now() + handBackMs;
      for (const w of pool) w.shutdownInFlight(!refused, giveUpAt);
    }
    await running;
    // Every job this agent knew of is handed in or given back: signed out again, keeping
    // nothing, for a hand-back that failed.
    await signedOut;
    await Promise.all(pool.map((w, i) => w.signOut(targets[i]!, false, Math.max(1, signOutMs))));
    await http?.close().catch(() => {});
    logger.info({ ...stats }, "workers stopped");
    emit({ type: "stopped", stats: { ...stats } });
  };

  return {
    stop(opts = {}) {
      stopping ??= stopPool(
        Math.max(0, opts.graceMs ?? DEFAULT_GRACE_MS),
        false,
        opts.signOutMs ?? SIGN_OUT_BUDGET_MS.stopped,
        Math.max(1, opts.handBackMs ?? HAND_BACK_BUDGET_MS),
      );
      return stopping;
    },
    stats: () => ({ ...stats }),
  };
}
