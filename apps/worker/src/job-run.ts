// One leased job from lease to outcome: heartbeat every leaseMs/3 while the backend proves, hand
// the proof in, and settle as proven, rejected (422), lost (409 / expired session) or failed
// (handed back with failJob). Never throws.
import { type LeasedJob, type RelayClient, RelayError } from "@prover-boost/sdk";
import type { Hex } from "viem";
import { HAND_BACK_BUDGET_MS } from "./defaults.ts";
import {
  acceptedInUnreadAnswer,
  classifyRelayError,
  errorMessage,
  isRetryable,
  JobAbort,
  unreadLeaseOf,
} from "./errors.ts";
import type { SessionHandle, WorkerSession } from "./session.ts";
import { Backoff, raceAbort, retryDelayMs, sleep } from "./timing.ts";
import type {
  BackendProof,
  JobRef,
  ProofBackend,
  WorkerEvent,
  WorkerLogger,
  WorkerStats,
} from "./types.ts";

const HEX = /^0x[0-9a-fA-F]+$/;
const DEFAULT_LEASE_MS = 15_000;
/**
 * A stopping worker's last offer of a proof in hand waits this long for its answer: a relay that
 * answers at all answers sooner, and one that does not would not take the release after it
 * either, so the offer costs the stop's reserve for releases little.
 */
const LAST_DELIVERY_TIMEOUT_MS = 1_000;
/**
 * Keep sending a finished proof whose result the relay did not answer (down, overloaded) for this
 * long after the first failure, until it gives a definitive answer. Not tied to the lease: a
 * relay revives a lease whose window no relay could hear, so a late result still counts.
 */
export const RESULT_RETRY_BUDGET_MS = 10 * 60_000;

export interface JobContext {
  workerId: string;
  backend: ProofBackend;
  session: WorkerSession;
  logger: WorkerLogger;
  emit: (e: WorkerEvent) => void;
  stats: WorkerStats;
  /** How long to keep sending a finished proof the relay does not answer; default 10 min. */
  resultRetryBudgetMs?: number;
}

/** How a job ended for this worker. `backend_failed`: handed back because the backend threw. */
export type JobOutcome = "proven" | "rejected" | "lost" | "failed" | "backend_failed";

export const jobRef = (j: LeasedJob): JobRef => ({
  id: j.id,
  type: j.type,
  blockNumber: j.blockNumber,
  level: j.level,
  index: j.index,
});

export class JobRun {
  private readonly abort = new AbortController();
  private readonly ref: JobRef;
  private readonly leaseMs: number;
  private leaseExpiresAt: number;
  /** A result request is on its way (heartbeats wait). */
  private submitting = false;
  /** The proof is done and being handed in (its result's answer decides the lease). */
  private delivering = false;
  /** The next job, leased with this one's accepted result (asked for when `askNext()` said so). */
  next: LeasedJob | null = null;

  constructor(
    readonly job: LeasedJob,
    readonly handle: SessionHandle,
    private readonly ctx: JobContext,
    /** Whether the result should also lease the next job (not once the worker is stopping). */
    private readonly askNext: () => boolean = () => false,
  ) {
    this.ref = jobRef(job);
    this.leaseMs = handle.leaseMs > 0 ? handle.leaseMs : DEFAULT_LEASE_MS;
    // The relay's lease end is on its clock (Redis's): read on this one, a clock running behind
    // would take it for later than it is, and the heartbeat beside a result stuck on its way
    // would never go. Granted before its answer came, it is no later than a lease from now.
    this.leaseExpiresAt = Math.min(
      job.leaseExpiresAt ?? Number.POSITIVE_INFINITY,
      Date.now() + this.leaseMs,
    );
  }

  /**
   * Stop proving and hand the job back to the queue ("worker shutting down"); with `offerProof`,
   * a proof already done is offered once more first (deliverOnStop). Both give up at `giveUpAt`
   * (epoch ms), so a relay that does not answer cannot hold the stop past its grace.
   */
  shutdown(offerProof = true, giveUpAt = Number.POSITIVE_INFINITY): void {
    // (A later call never moves an earlier deadline back.)
    this.giveUpAt = Math.min(this.giveUpAt, giveUpAt);
    if (Number.isFinite(giveUpAt)) {
      // A hand-back request already on its way (sent before the stop) is let go of then too.
      setTimeout(() => this.givenUp.abort(), Math.max(0, giveUpAt - Date.now())).unref();
    }
    this.abort.abort(new JobAbort("shutdown", "worker shutting down", offerProof));
  }

  /** When a stopping agent's offer and hand-back of this job give up (shutdown). */
  private giveUpAt = Number.POSITIVE_INFINITY;
  /** Aborted at giveUpAt. */
  private readonly givenUp = new AbortController();

  async run(): Promise<JobOutcome> {
    const started = Date.now();
    const signal = this.abort.signal;
    const stopHeartbeat = this.startHeartbeat();
    try {
      let proof: BackendProof;
      try {
        proof = checkedProof(
          this.ctx.backend.name,
          await raceAbort(this.ctx.backend.prove(this.job, signal), signal),
        );
      } catch (err) {
        if (signal.aborted) return await this.onAborted();
        this.ctx.logger.warn(
          { worker: this.ctx.workerId, job: this.ref, err: errorMessage(err) },
          "backend failed",
        );
        const reason = `${this.ctx.backend.name}: ${errorMessage(err)}`;
        // Handed back or not, the backend failed: the loop backs off before its next job.
        const outcome = await this.tryHandBack(reason, isRetryable(err));
        return outcome === "lost" ? "lost" : "backend_failed";
      }
      if (signal.aborted) return await this.deliverOnStop(proof, started);
      return await this.submit(proof, started);
    } catch (err) {
      // Not expected; make sure the job is accounted for and the loop goes on.
      this.ctx.logger.error(
        { worker: this.ctx.workerId, job: this.ref, err: errorMessage(err) },
        "job error",
      );
      return await this.handBack(`worker error: ${errorMessage(err)}`, true);
    } finally {
      stopHeartbeat();
    }
  }

  private async submit(proof: BackendProof, started: number): Promise<JobOutcome> {
    const { emit, logger, workerId } = this.ctx;
    const signal = this.abort.signal;
    const backoff = new Backoff();
    const budgetMs = this.ctx.resultRetryBudgetMs ?? RESULT_RETRY_BUDGET_MS;
    let giveUpAt: number | undefined;
    this.delivering = true;
    for (;;) {
      try {
        this.submitting = true;
        // The run's signal: a stop whose drain is over does not wait out this answer (a relay
        // stuck verifying, a connection dropped without a word: up to the client's deadline,
        // past the stop's grace, and the job never released). The request is let go (a next job
        // asked for with it goes back on the relay, its answer unwritten) and the proof offered
        // once more, briefly, before the job is released.
        const answer = await this.handle.client
          .submitResult(this.job.id, proof.proof, proof.publicInputs, {
            next: this.askNext(),
            signal,
          })
          .finally(() => {
            this.submitting = false;
          });
        this.next = answer?.next ?? null;
        return this.proven(started);
      } catch (err) {
        const message = errorMessage(err);
        if (signal.aborted && !(err instanceof RelayError) && !acceptedInUnreadAnswer(err)) {
          return this.deliverOnStop(proof, started);
        }
        if (acceptedInUnreadAnswer(err)) {
          // The proof was taken; what could not be read is the rest (a next job this agent cannot
          // run, from a relay of another version): that job goes back, not left to lapse.
          logger.warn({ worker: workerId, job: this.ref, err: message }, "result answer unread");
          const next = unreadLeaseOf(err);
          if (next) await handBackUnread(this.handle.client, next, message, this.ctx);
          return this.proven(started);
        }
        const kind = classifyRelayError(err);
        if (kind === "lease_lost") return this.lost(`result refused: ${message}`);
        if (kind === "unauthorized") {
          this.ctx.session.invalidate(this.handle);
          return this.lost(`session ended: ${message}`);
        }
        if (kind === "rejected") return this.rejected(message);
        if (kind === "client_error") return this.handBack(`result refused: ${message}`, true);
        if (signal.aborted) return this.onAborted();
        giveUpAt ??= Date.now() + budgetMs;
        const left = giveUpAt - Date.now();
        if (left <= 0) {
          return this.lost(
            `could not deliver the result within ${Math.round(budgetMs / 1000)} s: ${message}`,
          );
        }
        // An overloaded relay (503) or a rate limit (429) says when to come back: at least that
        // long (and no sooner than the backoff), spread so a fleet does not return at once.
        const after = err instanceof RelayError ? err.retryAfterMs : undefined;
        const retryInMs = Math.min(left, retryDelayMs(after, backoff));
        logger.warn(
          { worker: workerId, job: this.ref, err: message, retryInMs },
          "result not delivered; retrying",
        );
        emit({ type: "relay_error", worker: workerId, op: "result", message, retryInMs });
        try {
          await sleep(retryInMs, signal);
        } catch {
          return this.deliverOnStop(proof, started);
        }
      }
    }
  }

  /** The relay refused the proof as invalid (a penalty). */
  private rejected(message: string): "rejected" {
    const { stats, emit, logger, workerId } = this.ctx;
    stats.rejected++;
    logger.error({ worker: workerId, job: this.ref, err: message }, "proof rejected");
    emit({ type: "rejected", worker: workerId, job: this.ref, message });
    return "rejected";
  }

  private proven(started: number): JobOutcome {
    const { stats, emit, logger, workerId } = this.ctx;
    stats.proven++;
    const ms = Date.now() - started;
    logger.info({ worker: workerId, job: this.ref, ms }, "proof accepted");
    emit({ type: "proven", worker: workerId, job: this.ref, ms });
    return "proven";
  }

  private startHeartbeat(): () => void {
    const { logger, workerId } = this.ctx;
    const interval = Math.max(50, Math.floor(this.leaseMs / 3));
    const backoff = new Backoff(200, interval);
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const schedule = (ms: number) => {
      if (!stopped) timer = setTimeout(tick, ms);
    };
    const tick = async () => {
      // A result that reached the relay keeps the lease by itself (the relay counts it from its
      // arrival), so no heartbeat goes beside one on its way while the lease has more than a
      // period left: under load each would take a connection of its own, and a busy relay
      // accepts new connections slowly. In the lease's last period one does: the result may be
      // stuck where it never reaches the relay (a connection a NAT or balancer dropped without a
      // word, left to the client's deadline, 15 s), and the lease must not end with it. Heartbeats
      // resume too if the result must be sent again.
      if (this.submitting && this.leaseExpiresAt - Date.now() > interval) {
        return schedule(Math.min(interval, 100));
      }
      try {
        // One left unanswered a whole period is given up and sent again (a relay stopped behind
        // an open connection would otherwise hold it to the client's deadline, 15 s, the default
        // lease's length, while another relay behind the same address could take it). Sent a
        // period into the lease, it is given up with a third left. On this process's clock
        // alone; the relay counts one from its arrival, so one given up that arrived counted.
        const sentAt = Date.now();
        const r = await this.handle.client.heartbeat(this.job.id, { timeoutMs: interval });
        // Extended from the heartbeat's arrival: on this clock, a lease from its send at least.
        if (typeof r?.leaseExpiresAt === "number") {
          this.leaseExpiresAt = Math.min(r.leaseExpiresAt, sentAt + this.leaseMs);
        }
        this.ctx.emit({ type: "heartbeat", worker: workerId, job: this.ref, ok: true });
        backoff.reset();
        schedule(interval);
      } catch (err) {
        if (stopped) return;
        this.ctx.emit({ type: "heartbeat", worker: workerId, job: this.ref, ok: false });
        const kind = classifyRelayError(err);
        const message = errorMessage(err);
        if (kind === "lease_lost" && this.delivering) {
          // A result already sent may have completed the job (the relay's answer was lost on
          // its way), which ends the lease: the result sent again says whether it counted.
          logger.warn(
            { worker: workerId, job: this.ref, err: message },
            "lease ended while the result is being handed in; the result decides",
          );
          stopped = true;
        } else if (kind === "lease_lost") {
          logger.warn(
            { worker: workerId, job: this.ref, err: message },
            "lease lost; dropping job",
          );
          this.abort.abort(new JobAbort("lease_lost", `lease lost: ${message}`));
        } else if (kind === "unauthorized") {
          this.ctx.session.invalidate(this.handle);
          this.abort.abort(new JobAbort("session_lost", `session ended: ${message}`));
        } else {
          const retryInMs = Math.min(interval, backoff.next());
          logger.warn(
            { worker: workerId, job: this.ref, err: message, retryInMs },
            "heartbeat failed",
          );
          this.ctx.emit({
            type: "relay_error",
            worker: workerId,
            op: "heartbeat",
            message,
            retryInMs,
          });
          schedule(retryInMs);
        }
      }
    };
    // The first heartbeat comes at half the time the lease has left, if that is sooner: a lease
    // answer that arrived late (a busy relay, a slow network) leaves less than a full interval.
    // Not below 50 ms, so a clock ahead of the relay's does not make it a burst.
    const left = this.leaseExpiresAt - Date.now();
    schedule(Math.max(50, Math.min(interval, Math.floor(left / 2))));
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  /**
   * Stopped with a proof in hand (it was done as the stop's grace ran out, or waiting to be sent
   * again): the proof is offered once more, at once, within LAST_DELIVERY_TIMEOUT_MS, before the
   * job is released as an unfinished one would be. A proof thrown away is work redone, and one
   * the relay had already taken would make the release a lost lease. Not on a stop for proofs
   * refused as invalid (each offer would be one more penalty), nor for any other end (the lease
   * lost, the session ended): the job is dropped or released as before.
   */
  private async deliverOnStop(proof: BackendProof, started: number): Promise<JobOutcome> {
    const reason: unknown = this.abort.signal.reason;
    if (!(reason instanceof JobAbort && reason.kind === "shutdown" && reason.offerProof)) {
      return this.onAborted();
    }
    try {
      await this.handle.client.submitResult(this.job.id, proof.proof, proof.publicInputs, {
        timeoutMs: Math.max(1, Math.min(LAST_DELIVERY_TIMEOUT_MS, this.giveUpAt - Date.now())),
      });
      return this.proven(started);
    } catch (err) {
      if (acceptedInUnreadAnswer(err)) return this.proven(started);
      const kind = classifyRelayError(err);
      if (kind === "lease_lost") return this.lost(`result refused: ${errorMessage(err)}`);
      if (kind === "rejected") return this.rejected(errorMessage(err));
      return this.onAborted();
    }
  }

  private async onAborted(): Promise<JobOutcome> {
    const reason: unknown = this.abort.signal.reason;
    if (reason instanceof JobAbort && reason.kind === "shutdown") {
      return this.handBack(reason.message, true, true);
    }
    return this.lost(reason instanceof Error ? reason.message : "aborted");
  }

  private lost(reason: string): "lost" {
    this.ctx.stats.lost++;
    this.ctx.logger.warn({ worker: this.ctx.workerId, job: this.ref, reason }, "job lost");
    this.ctx.emit({ type: "lost", worker: this.ctx.workerId, job: this.ref, reason });
    return "lost";
  }

  /**
   * failJob with a few retries; the job is counted as failed once the relay heard, and as lost
   * when it could not (its lease will lapse). `shutdown`: the agent is stopping, so the relay
   * releases the job counted as no fail.
   */
  private async handBack(
    reason: string,
    retryable: boolean,
    shutdown = false,
  ): Promise<"failed" | "lost"> {
    const outcome = await this.tryHandBack(reason, retryable, shutdown);
    return outcome === "unheard" ? "lost" : outcome;
  }

  /**
   * handBack's tries: `unheard` when the relay never answered in time (counted as lost). They
   * stop HAND_BACK_BUDGET_MS after the first, or at the stop's giveUpAt, read before each try:
   * a stop that comes while a hand-back is under way bounds it too.
   */
  private async tryHandBack(
    reason: string,
    retryable: boolean,
    shutdown = false,
  ): Promise<"failed" | "lost" | "unheard"> {
    const { stats, emit, logger, workerId } = this.ctx;
    const budgetEnd = Date.now() + HAND_BACK_BUDGET_MS;
    const backoff = new Backoff(200, 2000);
    for (;;) {
      const deadline = Math.min(budgetEnd, this.giveUpAt);
      try {
        await raceAbort(
          this.handle.client.failJob(this.job.id, reason.slice(0, 500), retryable, {
            shutdown,
            timeoutMs: Math.max(1, deadline - Date.now()),
          }),
          this.givenUp.signal,
        );
        break;
      } catch (err) {
        const kind = classifyRelayError(err);
        if (kind === "lease_lost") return this.lost(`${reason}; the lease had already lapsed`);
        if (kind === "unauthorized") {
          this.ctx.session.invalidate(this.handle);
          return this.lost(`${reason}; the session had ended`);
        }
        const retryInMs = backoff.next();
        if (kind !== "transient" || Date.now() + retryInMs >= deadline) {
          logger.error(
            { worker: workerId, job: this.ref, err: errorMessage(err) },
            "could not hand the job back; its lease will lapse on the relay",
          );
          // Not handed back: counted, and told, as the lost lease it will be.
          this.lost(`${reason}; could not hand it back: ${errorMessage(err)}`);
          return "unheard";
        }
        // Cut short by a stop (its abort): the next try reads the stop's deadline. (Not once the
        // job was aborted already: every later wait would be skipped.)
        const cut = shutdown || this.abort.signal.aborted ? undefined : this.abort.signal;
        await sleep(retryInMs, cut).catch(() => {});
      }
    }
    stats.failed++;
    logger.warn({ worker: workerId, job: this.ref, reason, retryable }, "job handed back");
    emit({ type: "failed", worker: workerId, job: this.ref, reason, retryable });
    return "failed";
  }
}

const FIELD = /^0x[0-9a-fA-F]{64}$/;

/** A backend's answer as a proof with public inputs; anything malformed is the backend's error. */
function checkedProof(backend: string, out: Hex | BackendProof): BackendProof {
  const p = typeof out === "string" ? { proof: out, publicInputs: [] } : out;
  if (typeof p?.proof !== "string" || !HEX.test(p.proof)) {
    throw new Error(`backend ${backend} returned a non-hex proof`);
  }
  if (!Array.isArray(p.publicInputs) || !p.publicInputs.every((f) => FIELD.test(f))) {
    throw new Error(`backend ${backend} returned public inputs that are not 32-byte hex fields`);
  }
  return { proof: p.proof, publicInputs: p.publicInputs };
}

/**
 * Hands back a job the relay leased in an answer this agent could not read (unreadLeaseOf), as
 * a retryable fail: this agent cannot run it, and after MAX_RETRYABLE_FAILS_PER_WORKER the relay
 * stops offering it to this worker (a stopping worker's release would not: the job would come
 * straight back, and releases past the session's capacity are counted as fails anyway). Its
 * lease does not lapse as withholding. Three tries; one answered "lease lost" is taken as done
 * (an earlier try whose answer was lost, or a stopping agent's sign-out, gave it back). Each
 * such job is reported (`unreadable`): the pool stops after UNREADABLE_MAX in a row, as every
 * job's attempts would be used up this way.
 */
export async function handBackUnread(
  client: RelayClient,
  jobId: string,
  why: string,
  ctx: Pick<JobContext, "logger" | "emit" | "workerId">,
): Promise<void> {
  const { logger } = ctx;
  ctx.emit({ type: "unreadable", worker: ctx.workerId, job: jobId, message: why });
  const reason = `the lease's answer could not be read: ${why}`.slice(0, 500);
  const backoff = new Backoff(200, 2000);
  for (let attempt = 1; ; attempt++) {
    try {
      await client.failJob(jobId, reason, true);
      logger.warn({ job: jobId }, "handed back a job whose lease answer could not be read");
      return;
    } catch (err) {
      const kind = classifyRelayError(err);
      // Gone already: handed back by an earlier try whose answer was lost, or by the sign-out
      // of a stopping agent.
      if (kind === "lease_lost") return;
      if (attempt >= 3 || kind !== "transient") {
        logger.error(
          { job: jobId, err: errorMessage(err) },
          "could not hand back a job whose lease answer could not be read; its lease will lapse",
        );
        return;
      }
      await sleep(backoff.next()).catch(() => {});
    }
  }
}
