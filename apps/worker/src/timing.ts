import { RETRY_AFTER_MAX_MS } from "@prover-boost/sdk";
// Timing helpers: abortable sleep, racing a promise against an AbortSignal, and exponential
// backoff with jitter for talking to a relay that may be down.

/** The signal's reason as an Error (an AbortError when it has none). */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const err = new Error(typeof r === "string" ? r : "aborted");
  err.name = "AbortError";
  return err;
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `promise`, unless `signal` aborts first: then rejects with its reason. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Exponential backoff with "equal jitter": the n-th delay is uniform in [d/2, d] where
 * d = min(capMs, startMs * 2^n). `reset()` after a success.
 */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly startMs = 200,
    private readonly capMs = 10_000,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const d = Math.min(this.capMs, this.startMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(d / 2 + (this.random() * d) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}

/**
 * The least wait after an answer with a Retry-After, however short the Retry-After: the ordinary
 * backoff, up to this. A `Retry-After: 0` (or a date already past) must not make the worker retry
 * at once, again and again; nor may a backoff grown while the relay could not be reached at all
 * keep the worker away once the relay answers and says when to come back.
 */
export const RETRY_AFTER_FLOOR_CAP_MS = 1000;

/**
 * How long to wait before trying again: the relay's Retry-After (when it sent one) spread over up
 * to half as long again, so a fleet does not return at once, and never less than the ordinary
 * `backoff` (capped at RETRY_AFTER_FLOOR_CAP_MS); the ordinary backoff when it sent none.
 */
export function retryDelayMs(retryAfterMs: number | undefined, backoff: Backoff): number {
  const ordinary = backoff.next();
  if (retryAfterMs === undefined) return ordinary;
  return Math.max(
    Math.min(ordinary, RETRY_AFTER_FLOOR_CAP_MS),
    Math.round(Math.min(retryAfterMs, RETRY_AFTER_MAX_MS) * (1 + Math.random() / 2)),
  );
}

/**
 * The longest Retry-After the agent waits out (then spread as any other), the SDK's: a relay (or
 * a proxy before it) asking for days is taken at an hour, and no wait ever reaches Node's longest
 * timer, past which a timer fires after 1 ms and the wait would become a tight loop.
 */
export { RETRY_AFTER_MAX_MS };
