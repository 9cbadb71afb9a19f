// One worker: a relay session and `capacity` lease loops. Each loop long-polls for a job, runs it
// to an outcome, and polls again; relay errors are retried with backoff until the pool stops.
import { type LeasedJob, RelayError } from "@prover-boost/sdk";
import { classifyRelayError, errorMessage, unreadLeaseOf } from "./errors.ts";
import { handBackUnread, type JobContext, type JobOutcome, JobRun, jobRef } from "./job-run.ts";
import type { SessionHandle } from "./session.ts";
import { Backoff, retryDelayMs, sleep } from "./timing.ts";

export interface WorkerDeps extends JobContext {
  capacity: number;
  waitMs: number;
  stopSignal: AbortSignal;
}

/** A poll that came back empty faster than this is followed by a short pause. */
const FAST_EMPTY_POLL_MS = 50;
const EMPTY_POLL_PAUSE_MS = 100;

export class Worker {
  private readonly runs = new Set<JobRun>();

  constructor(private readonly deps: WorkerDeps) {}

  /** Runs the lease loops; resolves when the pool stops and the loops' jobs are settled. */
  async run(): Promise<void> {
    await Promise.all(Array.from({ length: this.deps.capacity }, (_, slot) => this.loop(slot)));
  }

  /**
   * Abort every in-flight job; each is handed back to the queue (with `offerProofs`, a proof
   * already done is offered once more first), giving up at `giveUpAt` (epoch ms).
   */
  shutdownInFlight(offerProofs = true, giveUpAt = Number.POSITIVE_INFINITY): void {
    for (const run of this.runs) run.shutdown(offerProofs, giveUpAt);
  }

  /** The sessions its sign-out ends, read as the stop begins (WorkerSession.signOutTargets). */
  signOutTargets(): SessionHandle[] {
    return this.deps.session.signOutTargets();
  }

  /**
   * Signs `handles` out on the relay, keeping the jobs still running under each when
   * `keepRunning` (at once as the stop begins), or nothing (once every job is handed in or back).
   */
  signOut(
    handles: readonly SessionHandle[],
    keepRunning: boolean,
    budgetMs: number,
  ): Promise<void> {
    const keepOf = (h: SessionHandle) =>
      keepRunning
        ? [...this.runs].filter((r) => r.handle.generation === h.generation).map((r) => r.job.id)
        : [];
    return this.deps.session.signOut(handles, keepOf, budgetMs);
  }

  get inFlight(): number {
    return this.runs.size;
  }

  private async loop(slot: number): Promise<void> {
    const { stopSignal, session, logger, emit, workerId, stats, waitMs } = this.deps;
    const backoff = new Backoff();
    // A backend that keeps failing should not churn through the queue at full speed.
    const backendBackoff = new Backoff();
    const pause = (ms: number) => sleep(ms, stopSignal).catch(() => {});
    /** The next job a result's answer brought (leased with it, under that run's session). */
    let carried: { job: LeasedJob; handle: SessionHandle } | null = null;
    // A job carried in is run even once stopping has begun: it goes straight back (see below).
    while (carried || !stopSignal.aborted) {
      try {
        let handle: SessionHandle;
        let job: LeasedJob | null;
        const via = carried ? "result" : "lease";
        if (carried) {
          ({ job, handle } = carried);
          carried = null;
        } else {
          try {
            handle = await session.get();
          } catch {
            break; // get() only gives up when the pool stops
          }
          const polledAt = Date.now();
          session.pollStarted(handle);
          try {
            job = await handle.pollClient.lease(waitMs);
            session.pollEnded(handle);
            backoff.reset();
            emit({
              type: "lease_answered",
              worker: workerId,
              ms: Date.now() - polledAt,
              leased: job !== null,
            });
          } catch (err) {
            session.pollEnded(handle);
            // A job leased in an answer this agent cannot read goes back, not left to lapse
            // (even while stopping).
            const unread = unreadLeaseOf(err);
            if (unread) await handBackUnread(handle.client, unread, errorMessage(err), this.deps);
            // Stopping: the relay may have answered with a job as the poll was cut short; the
            // sign-out gives it back.
            if (stopSignal.aborted) break;
            if (classifyRelayError(err) === "unauthorized") session.invalidate(handle);
            // An overloaded relay (503) or a rate limit (429) says when to come back: at least
            // that long (and no sooner than the backoff), spread so a fleet does not return at
            // once.
            const after = err instanceof RelayError ? err.retryAfterMs : undefined;
            const retryInMs = retryDelayMs(after, backoff);
            const message = errorMessage(err);
            logger.warn(
              { worker: workerId, slot, err: message, retryInMs },
              "lease failed; retrying",
            );
            emit({ type: "relay_error", worker: workerId, op: "lease", message, retryInMs });
            await pause(retryInMs);
            continue;
          }
          if (!job) {
            if (Date.now() - polledAt < FAST_EMPTY_POLL_MS) await pause(EMPTY_POLL_PAUSE_MS);
            continue;
          }
        }
        stats.leased++;
        logger.debug({ worker: workerId, slot, job: jobRef(job) }, "job leased");
        emit({ type: "leased", worker: workerId, job: jobRef(job), via });
        // While not stopping, the result also asks for the next job (one request, not two), as
        // long as the session is fresh enough to lease under: else the loop signs in again first.
        const leasedUnder = handle;
        const run: JobRun = new JobRun(
          job,
          handle,
          this.deps,
          () => !stopSignal.aborted && session.fresh(leasedUnder),
        );
        this.runs.add(run);
        // A job that arrives once stopping has begun goes straight back to the queue.
        if (stopSignal.aborted) run.shutdown();
        let outcome: JobOutcome;
        try {
          outcome = await run.run();
        } finally {
          this.runs.delete(run);
        }
        if (run.next) carried = { job: run.next, handle };
        // A rejected proof (a penalty) is no cause to race to the next one either.
        if (outcome === "backend_failed" || outcome === "rejected") {
          await pause(backendBackoff.next());
        } else if (outcome === "proven") backendBackoff.reset();
      } catch (err) {
        // Defensive: nothing above should throw, but a worker must never die.
        logger.error({ worker: workerId, slot, err: errorMessage(err) }, "lease loop error");
        await pause(backoff.next());
      }
    }
  }
}
