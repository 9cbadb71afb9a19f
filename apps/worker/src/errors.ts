// Error kinds of the worker: backend failures (with a retryable flag), why a job was aborted,
// and how an answer of the relay is to be handled.
import { ProverBoostError } from "@prover-boost/core";
import { RelayError } from "@prover-boost/sdk";

/**
 * A backend failure. `retryable: false` tells the relay the job itself is bad (it is failed, not
 * re-queued); any other error a backend throws is treated as retryable.
 */
export class BackendError extends ProverBoostError {
  override readonly name = "BackendError";
  constructor(message: string, retryable = true, options: { cause?: unknown } = {}) {
    super("BACKEND_FAILED", message, { ...options, retryable });
  }
}

/** Whether a backend error allows the job to be retried (true unless it says otherwise). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof BackendError) return err.retryable;
  // Our other errors' flags speak of their own operation (a request, a lease), not of the job:
  // only a backend's verdict fails a job for good.
  if (err instanceof ProverBoostError) return true;
  if (err && typeof err === "object" && "retryable" in err) return err.retryable !== false;
  return true;
}

/** The reason a job's AbortSignal fired. */
export class JobAbort extends ProverBoostError {
  override readonly name = "AbortError";
  constructor(
    readonly kind: "lease_lost" | "session_lost" | "shutdown",
    message: string,
  ) {
    super("JOB_ABORTED", message);
  }
}

export type RelayFailure =
  /** Network error, timeout, 5xx, 429: try again later. */
  | "transient"
  /** 401: the session is gone; sign in again. */
  | "unauthorized"
  /** 409 or 404 on a job: the lease is not (or no longer) ours. */
  | "lease_lost"
  /** 422: well-formed but refused (an invalid proof). */
  | "rejected"
  /** Any other 4xx: our request was wrong; retrying the same request will not help. */
  | "client_error";

export function classifyRelayError(err: unknown): RelayFailure {
  if (!(err instanceof RelayError)) return "transient";
  const { status } = err;
  if (status === 401) return "unauthorized";
  if (status === 409 || status === 404) return "lease_lost";
  if (status === 422) return "rejected";
  if (status === 408 || status === 429 || status >= 500) return "transient";
  return "client_error";
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
