// A worker's relay session: reads the relay's EIP-712 domain, signs a WorkerLogin with the
// operator key and trades it for a bearer token. Signs in again once half the session's lifetime
// is gone (before leasing, or asking a result for the next job) or the relay answered 401. Jobs
// keep the session they were leased under, since a lease belongs to the session that took it.
import { type JobType, ProverBoostError } from "@prover-boost/core";
import {
  newWorkerLogin,
  RelayClient,
  RelayError,
  signWorkerLogin,
  type WorkerLoginJson,
} from "@prover-boost/sdk";
import type { LocalAccount } from "viem";
import { classifyRelayError, errorMessage } from "./errors.ts";
import { Backoff, retryDelayMs, sleep } from "./timing.ts";
import type { Hardware, WorkerEvent, WorkerLogger } from "./types.ts";

export interface SessionHandle {
  /** Increments with every sign-in of this worker. */
  generation: number;
  sessionId: string;
  expiresAt: number;
  signedInAt: number;
  /** Lease duration the relay grants, ms (from /v1/info). */
  leaseMs: number;
  /** Authenticated client for heartbeat, result and fail. */
  client: RelayClient;
  /** Authenticated client whose requests are cancelled when the pool stops (long polls). */
  pollClient: RelayClient;
}

export interface SessionDeps {
  workerId: string;
  relayUrl: string;
  account: LocalAccount;
  capacity: number;
  jobTypes: JobType[];
  /** The signed hardware tier. */
  tier: number;
  hardware: Hardware;
  fetch: typeof fetch;
  /** Aborts when the pool stops. */
  stopSignal: AbortSignal;
  logger: WorkerLogger;
  emit: (e: WorkerEvent) => void;
}

/** Sign-in refusals that signing in again cannot change: the worker stops. */
const PERMANENT_REFUSALS: ReadonlySet<string> = new Set([
  "TIER_TOO_LOW",
  "SIGNER_NOT_ALLOWED",
  "BAD_SIGNATURE",
  "LOGIN_STALE",
  "ISSUED_IN_FUTURE",
  "VALIDATION_FAILED",
]);
/** Refusals that say this machine's clock and the relay's disagree. */
const CLOCK_SKEW: ReadonlySet<string> = new Set(["LOGIN_STALE", "ISSUED_IN_FUTURE"]);

/** The relay refused the sign-in for good (a permanent refusal); the worker cannot run. */
export class SignInRefused extends ProverBoostError {
  override readonly name = "SignInRefused";
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("SIGN_IN_REFUSED", message, options);
  }
}

/** The message of a permanent refusal, with what to do about a clock that is off. */
function refusalMessage(err: RelayError): string {
  const base = `the relay refused the sign-in: ${err.message}`;
  if (!CLOCK_SKEW.has(err.code)) return base;
  return `${base} (this machine's clock and the relay's disagree: set the clock right, e.g. with NTP, and start again)`;
}

/**
 * How long a stopping worker spends signing out, retries of a transient failure included, by
 * default: at once, beside the drain of its jobs (keeping them; never past the drain's end), and
 * again once it has stopped (keeping nothing; the command line gives it part of the reserve the
 * shutdown grace keeps for handing back, drainMs).
 */
export const SIGN_OUT_BUDGET_MS = { atStop: 3_000, stopped: 2_000 };

export class WorkerSession {
  private current: SessionHandle | undefined;
  /** Sessions with long polls in flight, and how many. */
  private readonly polling = new Map<number, { handle: SessionHandle; n: number }>();
  private pending: Promise<SessionHandle> | undefined;
  private generation = 0;
  private readonly backoff = new Backoff();

  constructor(private readonly deps: SessionDeps) {}

  /**
   * The live session, signing in first if there is none or it is no longer fresh. Retries with
   * backoff (or the relay's Retry-After) until it succeeds; rejects when the pool stops, or with
   * SignInRefused when the relay refused the sign-in for good.
   */
  get(): Promise<SessionHandle> {
    const cur = this.current;
    if (cur && this.fresh(cur)) return Promise.resolve(cur);
    this.pending ??= this.signInWithRetry().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** Forget `handle` (the relay answered 401 with it); the next get() signs in again. */
  invalidate(handle: SessionHandle): void {
    if (this.current?.generation === handle.generation) this.current = undefined;
  }

  /** A long poll under `handle` is sent (pollEnded once it is answered or has failed). */
  pollStarted(handle: SessionHandle): void {
    const p = this.polling.get(handle.generation);
    if (p) p.n++;
    else this.polling.set(handle.generation, { handle, n: 1 });
  }

  pollEnded(handle: SessionHandle): void {
    const p = this.polling.get(handle.generation);
    if (p && --p.n <= 0) this.polling.delete(handle.generation);
  }

  /**
   * The sessions a stopping worker signs out, read as the stop begins: the current one and any
   * with a long poll in flight (which the stop cuts short: the relay may have answered it with a
   * job this worker will never read).
   */
  signOutTargets(): SessionHandle[] {
    const handles = new Map([...this.polling].map(([g, p]) => [g, p.handle]));
    if (this.current) handles.set(this.current.generation, this.current);
    return [...handles.values()];
  }

  /**
   * Ends `handles` on the relay: no new lease for them, and every lease they hold but for the
   * jobs `keepOf` names (those still running, handed in or back by the worker itself) goes back
   * to the queue at once, instead of lapsing as withholding. Retries a transient failure within
   * `budgetMs`; a sign-out that still fails is logged.
   */
  async signOut(
    handles: readonly SessionHandle[],
    keepOf: (h: SessionHandle) => string[],
    budgetMs: number,
  ): Promise<void> {
    const { logger, workerId } = this.deps;
    const until = Date.now() + budgetMs;
    await Promise.all(
      handles.map(async (h) => {
        const backoff = new Backoff(100, 1000);
        for (;;) {
          try {
            const timeoutMs = Math.max(until - Date.now(), 1);
            const keep = keepOf(h);
            const { released } = await h.client.endSession({ keep, timeoutMs });
            logger.info(
              { worker: workerId, sessionId: h.sessionId, kept: keep.length, released },
              "signed out",
            );
            return;
          } catch (err) {
            // A relay busy or briefly away (a fleet stopping at once, a blip) is asked again
            // while the budget lasts, no sooner than it says.
            const after = err instanceof RelayError ? err.retryAfterMs : undefined;
            const wait = retryDelayMs(after, backoff);
            if (classifyRelayError(err) === "transient" && Date.now() + wait < until) {
              await sleep(wait).catch(() => {});
              continue;
            }
            logger.warn(
              { worker: workerId, sessionId: h.sessionId, err: errorMessage(err) },
              "could not sign out; a job the relay leased as this worker stopped may lapse",
            );
            return;
          }
        }
      }),
    );
  }

  /**
   * Whether a job may still be leased under `h`: at least half its lifetime is left. A job leased
   * later would risk outliving the session (the relay serves an expired session's leases for a
   * bounded time only), so the worker signs in again first; a job already running keeps `h`.
   */
  fresh(h: SessionHandle): boolean {
    const ttl = h.expiresAt - h.signedInAt;
    return h.expiresAt - Date.now() >= ttl / 2;
  }

  private async signInWithRetry(): Promise<SessionHandle> {
    const { logger, workerId, stopSignal } = this.deps;
    for (;;) {
      stopSignal.throwIfAborted();
      try {
        const handle = await this.signIn();
        this.backoff.reset();
        this.current = handle;
        return handle;
      } catch (err) {
        if (stopSignal.aborted) throw err;
        if (err instanceof RelayError && PERMANENT_REFUSALS.has(err.code)) {
          const message = refusalMessage(err);
          logger.error({ worker: workerId, err: message }, "sign-in refused; stopping");
          this.deps.emit({ type: "fatal", worker: workerId, op: "sign_in", message });
          throw new SignInRefused(message, { cause: err });
        }
        // A rate limit (429) or an unavailable relay (503) says when to come back: at least that
        // long (and no sooner than the backoff), spread so a fleet does not return at once.
        const after = err instanceof RelayError ? err.retryAfterMs : undefined;
        const retryInMs = retryDelayMs(after, this.backoff);
        const message = errorMessage(err);
        logger.warn({ worker: workerId, err: message, retryInMs }, "sign-in failed; retrying");
        this.deps.emit({
          type: "relay_error",
          worker: workerId,
          op: "sign_in",
          message,
          retryInMs,
        });
        await sleep(retryInMs, stopSignal);
      }
    }
  }

  private async signIn(): Promise<SessionHandle> {
    const { account, workerId, relayUrl } = this.deps;
    const anon = new RelayClient({
      baseUrl: relayUrl,
      fetch: this.deps.fetch,
      signal: this.deps.stopSignal,
    });
    const info = await anon.info();
    const domain = {
      name: info.domain.name,
      version: info.domain.version,
      chainId: info.domain.chainId !== undefined ? BigInt(info.domain.chainId) : undefined,
      verifyingContract: info.domain.verifyingContract,
    };
    // A fresh nonce on every sign-in: the relay opens one session per signed login.
    const login: WorkerLoginJson = newWorkerLogin({
      operator: account.address,
      workerId,
      capacity: this.deps.capacity,
      jobTypes: this.deps.jobTypes,
      tier: this.deps.tier,
    });
    const signature = await signWorkerLogin(account, domain, login);
    const session = await anon.createSession(login, signature, this.deps.hardware);
    const client = new RelayClient({
      baseUrl: relayUrl,
      token: session.token,
      fetch: this.deps.fetch,
    });
    const handle: SessionHandle = {
      generation: ++this.generation,
      sessionId: session.sessionId,
      expiresAt: Number.isFinite(session.expiresAt) ? session.expiresAt : Number.POSITIVE_INFINITY,
      signedInAt: Date.now(),
      leaseMs: info.leaseMs,
      client,
      pollClient: new RelayClient({
        baseUrl: relayUrl,
        token: session.token,
        fetch: this.deps.fetch,
        signal: this.deps.stopSignal,
      }),
    };
    this.deps.logger.info(
      { worker: workerId, sessionId: session.sessionId, expiresAt: session.expiresAt },
      "signed in",
    );
    this.deps.emit({
      type: "signed_in",
      worker: workerId,
      sessionId: session.sessionId,
      expiresAt: session.expiresAt,
    });
    return handle;
  }
}
