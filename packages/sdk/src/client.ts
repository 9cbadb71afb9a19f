// Typed HTTP client for the relay API v1.
import { isErrorCode, operations } from "@prover-boost/contract";
import { ProverBoostError } from "@prover-boost/core";
import type { ZodType } from "zod";
import type {
  AuctionJson,
  AuctionView,
  BidCancellationJson,
  BidItem,
  BlockView,
  CancelBidAnswer,
  DepositAnswer,
  EndSessionAnswer,
  ErrorCode,
  FailAnswer,
  HeartbeatAnswer,
  LeasedJob,
  OpenAuctionAnswer,
  Page,
  ProofView,
  ProverView,
  QuoteJson,
  RelayInfo,
  ResultAnswer,
  SessionAnswer,
  SubmitBidAnswer,
  TreeNodeView,
  TxView,
  WorkerHardware,
  WorkerLoginJson,
} from "./wire.ts";

/**
 * A code of the contract, or "UNKNOWN": a code this client does not know (a newer relay) or an
 * answer that is not in the contract's error shape (a proxy's page). `rawCode` keeps what came.
 */
export type RelayErrorCode = ErrorCode | "UNKNOWN";

/** An error answer of the relay, in the contract's error shape. */
export class RelayError extends ProverBoostError {
  override readonly name = "RelayError";
  declare readonly code: RelayErrorCode;
  constructor(
    readonly status: number,
    readonly rawCode: string,
    message: string,
    readonly requestId?: string,
    options: { cause?: unknown } = {},
    /** The answer's Retry-After in ms (a 503 of an overloaded relay, a 429), if it had one. */
    readonly retryAfterMs?: number,
  ) {
    super(isErrorCode(rawCode) ? rawCode : "UNKNOWN", `${status} ${rawCode}: ${message}`, {
      ...options,
      retryable: isRetryableStatus(status),
    });
  }
}

/** An operation of the contract, by id, whose answers the client checks. */
export type OperationId = keyof typeof operations;

/**
 * A success answer that is not what the contract says the operation answers: a status it does
 * not answer with, a body that is not JSON (a proxy's or captive portal's page sent as 200), or
 * JSON not in the operation's shape (a truncated body, a relay speaking another version). The
 * request may or may not have taken effect, as when no answer came at all: retryable, as a
 * network error is.
 */
export class RelayAnswerError extends ProverBoostError {
  override readonly name = "RelayAnswerError";
  constructor(
    readonly status: number,
    readonly operation: OperationId,
    message: string,
    options: { cause?: unknown } = {},
    /** The answer's body as JSON, when it was JSON (what of it can be read). */
    readonly body?: unknown,
  ) {
    super("MALFORMED_ANSWER", `${operation} answered ${status}, ${message}`, {
      ...options,
      retryable: true,
    });
  }
}

/** At most `n` characters of a text, for a message. */
const clip = (text: string, n = 200) => (text.length > n ? `${text.slice(0, n)}...` : text);

/** An answer's body as its operation's contract reads it at its status, or RelayAnswerError. */
function checkedAnswer(operation: OperationId, status: number, text: string): unknown {
  const schema = (operations[operation].responses as Record<number, ZodType | undefined>)[status];
  if (!schema) throw new RelayAnswerError(status, operation, "a status it does not answer with");
  let body: unknown = null;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new RelayAnswerError(status, operation, `not JSON: ${clip(text)}`, { cause: err });
    }
  }
  const checked = schema.safeParse(body);
  if (!checked.success) {
    const where = checked.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`)
      .join("; ");
    throw new RelayAnswerError(
      status,
      operation,
      `not the contract's answer (${where})`,
      { cause: checked.error },
      body,
    );
  }
  return checked.data;
}

/** The longest wait a Retry-After is taken for (an hour): a longer one is read as this. */
export const RETRY_AFTER_MAX_MS = 3_600_000;

/** An HTTP date as RFC 9110 writes it (IMF-fixdate), e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
const httpDate = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * A Retry-After header (whole seconds, or an HTTP date) in ms from now, at most
 * RETRY_AFTER_MAX_MS; undefined if absent or not one of those (a number with a fraction or a
 * sign, which a lenient date parser would read as a date long past, is not).
 */
export function retryAfterMsOf(header: string | null | undefined): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  let ms: number;
  if (/^\d{1,10}$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else if (httpDate.test(trimmed)) {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - Date.now());
  } else if (/^\d+$/.test(trimmed)) ms = RETRY_AFTER_MAX_MS;
  else return undefined;
  return Math.min(ms, RETRY_AFTER_MAX_MS);
}

/**
 * Answers worth retrying as they are: rate limited, unavailable, or timed out, including a
 * proxy's 502 and 504 (the relay behind it unreachable or slow, as while it restarts). A 500 is
 * not: the relay itself answered and failed, and the same request most likely fails the same
 * way (a caller that knows its request is safe to repeat may still decide to).
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 502 || status === 503 || status === 504;
}

/** The contract's `{ error: { code, message, requestId } }` of an error answer, if it is one. */
function errorShapeOf(
  text: string,
): { code?: string; message?: string; requestId?: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const err = (parsed as { error?: unknown } | null)?.error;
  if (typeof err !== "object" || err === null) return undefined;
  const { code, message, requestId } = err as Record<string, unknown>;
  return {
    ...(typeof code === "string" ? { code } : {}),
    ...(typeof message === "string" ? { message } : {}),
    ...(typeof requestId === "string" ? { requestId } : {}),
  };
}

/**
 * Whether a failed request may succeed if sent again: a retryable answer, no answer at all (a
 * network error or a timeout, which `fetch` throws as it is), or an answer not in the contract.
 */
export function isRetryableRequestError(err: unknown): boolean {
  if (err instanceof RelayError || err instanceof RelayAnswerError) return err.retryable;
  return (
    err instanceof TypeError ||
    (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError"))
  );
}

export interface RelayClientOptions {
  baseUrl: string;
  /** Worker session token (Bearer) for the job endpoints. */
  token?: string;
  /** Admin token (Bearer) for admin endpoints. */
  adminToken?: string;
  /**
   * Per-request timeout, ms (default 15000); long polls add their waitMs to it. Infinity: no
   * deadline. A value Node's timers cannot hold (above 2147483647 ms, not a number, or below 1)
   * is refused.
   */
  timeoutMs?: number;
  /** Aborts every request of this client, pending or later (e.g. when the program stops). */
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/** Node's longest timer. */
const MAX_TIMER_MS = 2_147_483_647;

/** A request deadline Node's timers can hold: 1 ms to MAX_TIMER_MS, or Infinity (none). */
function checkTimeoutMs(t: number): void {
  if (t !== Number.POSITIVE_INFINITY && !(t >= 1 && t <= MAX_TIMER_MS)) {
    // Node would fire such a timer after 1 ms: every request would time out at once.
    throw new RangeError(`timeoutMs must be 1 to ${MAX_TIMER_MS} ms, or Infinity; got ${t}`);
  }
}

export class RelayClient {
  private readonly base: string;
  constructor(private readonly options: RelayClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    if (options.timeoutMs !== undefined) checkTimeoutMs(options.timeoutMs);
  }

  withToken(token: string): RelayClient {
    return new RelayClient({ ...this.options, token });
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    opts: {
      bearer?: string | undefined;
      extraTimeoutMs?: number;
      timeoutMs?: number;
      /** Check a success answer against this operation's contract (RelayAnswerError if not). */
      operation?: OperationId;
      /** This request's own signal, beside the client's: either aborts it. */
      signal?: AbortSignal;
    } = {},
  ): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
    // The request's own deadline and the client's signal, both let go of once the answer is read:
    // a deadline signal that outlived its request (AbortSignal.timeout) would still fire later,
    // and one combined with a long-lived signal (AbortSignal.any) stays tied to it, a cost on
    // every request of an agent that sends thousands.
    const ms = (opts.timeoutMs ?? this.options.timeoutMs ?? 15_000) + (opts.extraTimeoutMs ?? 0);
    const ended = new AbortController();
    const stop = this.options.signal;
    const onStop = () => ended.abort(stop?.reason);
    if (stop?.aborted) onStop();
    else stop?.addEventListener("abort", onStop, { once: true });
    const own = opts.signal;
    const onOwn = () => ended.abort(own?.reason);
    if (own?.aborted) onOwn();
    else own?.addEventListener("abort", onOwn, { once: true });
    const timer =
      ms === Number.POSITIVE_INFINITY
        ? undefined
        : setTimeout(
            () => ended.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")),
            Math.min(ms, MAX_TIMER_MS),
          );
    // Like AbortSignal.timeout's, the deadline alone does not keep the process alive.
    timer?.unref?.();
    let res: Response;
    let text: string;
    try {
      res = await (this.options.fetch ?? fetch)(`${this.base}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: ended.signal,
      });
      text = await res.text();
    } finally {
      clearTimeout(timer);
      stop?.removeEventListener("abort", onStop);
      own?.removeEventListener("abort", onOwn);
    }
    if (res.status >= 400) {
      // An error answer may not be JSON at all (a proxy's or load balancer's page): it is still
      // a RelayError, with its status and Retry-After, code UNKNOWN.
      const err = errorShapeOf(text);
      throw new RelayError(
        res.status,
        err?.code ?? "UNKNOWN",
        err?.message ?? clip(text),
        err?.requestId,
        {},
        retryAfterMsOf(res.headers.get("retry-after")),
      );
    }
    if (opts.operation) {
      return { status: res.status, body: checkedAnswer(opts.operation, res.status, text) as T };
    }
    const parsed = text.length > 0 ? (JSON.parse(text) as unknown) : undefined;
    return { status: res.status, body: parsed as T };
  }

  async info() {
    return (await this.request<RelayInfo>("GET", "/v1/info", undefined, { operation: "getInfo" }))
      .body;
  }

  // Sequencer
  /** Opens an auction; `txData`, the transactions' data in block order, is optional. */
  async openAuction(auction: AuctionJson, txs: string[], signature: string, txData?: string[]) {
    return (
      await this.request<OpenAuctionAnswer>(
        "POST",
        "/v1/auctions",
        {
          auction,
          txs,
          ...(txData !== undefined ? { txData } : {}),
          signature,
        },
        { operation: "openAuction" },
      )
    ).body;
  }
  /** A block's transaction by position: its hash and the bytes the sequencer uploaded. */
  async getTx(blockNumber: number, index: number) {
    return (
      await this.request<TxView>("GET", `/v1/blocks/${blockNumber}/txs/${index}`, undefined, {
        operation: "getTx",
      })
    ).body;
  }
  /** An accepted proof of one node, with its public inputs and verification key. */
  async getProof(blockNumber: number, jobId: string) {
    return (
      await this.request<ProofView>(
        "GET",
        `/v1/blocks/${blockNumber}/proofs/${encodeURIComponent(jobId)}`,
        undefined,
        { operation: "getProof" },
      )
    ).body;
  }
  async getAuction(blockNumber: number) {
    return (
      await this.request<AuctionView>("GET", `/v1/auctions/${blockNumber}`, undefined, {
        operation: "getAuction",
      })
    ).body;
  }

  // Prover operator
  async submitBid(quote: QuoteJson, signature: string) {
    return (
      await this.request<SubmitBidAnswer>(
        "POST",
        "/v1/bids",
        { quote, signature },
        { operation: "submitBid" },
      )
    ).body;
  }
  /** Withdraws the bid a signed BidCancellation names (see signBidCancellation). */
  async cancelBid(blockNumber: number, prover: string, cancellation: BidCancellationJson) {
    return (
      await this.request<CancelBidAnswer>(
        "DELETE",
        `/v1/bids/${blockNumber}/${prover}`,
        cancellation,
        { operation: "cancelBid" },
      )
    ).body;
  }
  async getProver(address: string) {
    return (
      await this.request<ProverView>("GET", `/v1/provers/${address}`, undefined, {
        operation: "getProver",
      })
    ).body;
  }
  /**
   * Credits collateral (ledger mode). With `reference`, the admin's own id for this credit, a
   * retry of the same deposit credits once (answered `replayed: true`).
   */
  async deposit(prover: string, amount: bigint, opts: { reference?: string } = {}) {
    return (
      await this.request<DepositAnswer>(
        "POST",
        "/v1/admin/deposits",
        { prover, amount: amount.toString(), ...opts },
        { bearer: this.options.adminToken, operation: "deposit" },
      )
    ).body;
  }

  // Workers
  /** Opens a session with a signed login (one session per login nonce). */
  async createSession(login: WorkerLoginJson, signature: string, hardware?: WorkerHardware) {
    return (
      await this.request<SessionAnswer>(
        "POST",
        "/v1/workers/sessions",
        {
          login,
          ...(hardware ? { hardware } : {}),
          signature,
        },
        { operation: "createSession" },
      )
    ).body;
  }
  /**
   * Signs the worker out: the session takes no new lease, and the leases it holds but for the
   * jobs in `keep` (those it is still running, to hand in or give back itself) go back to the
   * queue with no penalty: leases it never heard of, a long poll answered as it was cut short.
   * For a worker that is stopping.
   */
  async endSession(opts: { keep?: readonly string[]; timeoutMs?: number } = {}) {
    if (opts.timeoutMs !== undefined) checkTimeoutMs(opts.timeoutMs);
    const body = opts.keep && opts.keep.length > 0 ? { keep: [...opts.keep] } : undefined;
    return (
      await this.request<EndSessionAnswer>("DELETE", "/v1/workers/sessions/current", body, {
        bearer: this.options.token,
        operation: "endSession",
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      })
    ).body;
  }
  /** Long-polls for a job; null when none came within waitMs. */
  async lease(waitMs: number): Promise<LeasedJob | null> {
    const res = await this.request<{ job: LeasedJob }>(
      "POST",
      "/v1/jobs/lease",
      { waitMs },
      { bearer: this.options.token, extraTimeoutMs: waitMs, operation: "leaseJob" },
    );
    return res.status === 204 ? null : res.body.job;
  }
  /**
   * Keeps a lease. `timeoutMs`: this request's own deadline instead of the client's (a heartbeat
   * that cannot arrive before the lease runs out is better given up and sent again).
   */
  async heartbeat(jobId: string, opts: { timeoutMs?: number } = {}) {
    if (opts.timeoutMs !== undefined) checkTimeoutMs(opts.timeoutMs);
    return (
      await this.request<HeartbeatAnswer>(
        "POST",
        `/v1/jobs/${jobId}/heartbeat`,
        {},
        {
          bearer: this.options.token,
          operation: "heartbeat",
          ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        },
      )
    ).body;
  }
  /**
   * Hands in a proof; `publicInputs` (32-byte fields) for a real proof system, none for sim.
   * `next`: also lease the next job now, if one is ready (the answer's `next`, null if none).
   * `timeoutMs`: this request's own deadline, instead of the client's. `signal`: this request's
   * own, beside the client's (aborted, the request is let go: its answer is not waited for).
   */
  async submitResult(
    jobId: string,
    proof: string,
    publicInputs: readonly string[] = [],
    opts: { next?: boolean; timeoutMs?: number; signal?: AbortSignal } = {},
  ) {
    if (opts.timeoutMs !== undefined) checkTimeoutMs(opts.timeoutMs);
    return (
      await this.request<ResultAnswer>(
        "POST",
        `/v1/jobs/${jobId}/result`,
        {
          proof,
          ...(publicInputs.length > 0 ? { publicInputs } : {}),
          ...(opts.next ? { next: true } : {}),
        },
        {
          bearer: this.options.token,
          operation: "submitResult",
          ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
      )
    ).body;
  }
  /**
   * `shutdown`: this worker is stopping and releases the job, counted as no fail. `timeoutMs`:
   * this request's own deadline instead of the client's.
   */
  async failJob(
    jobId: string,
    reason: string,
    retryable: boolean,
    opts: { shutdown?: boolean; timeoutMs?: number } = {},
  ) {
    if (opts.timeoutMs !== undefined) checkTimeoutMs(opts.timeoutMs);
    return (
      await this.request<FailAnswer>(
        "POST",
        `/v1/jobs/${jobId}/fail`,
        opts.shutdown ? { reason, retryable, shutdown: true } : { reason, retryable },
        {
          bearer: this.options.token,
          operation: "failJob",
          ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        },
      )
    ).body;
  }

  // Public data
  async getBlock(blockNumber: number) {
    return (
      await this.request<BlockView>("GET", `/v1/blocks/${blockNumber}`, undefined, {
        operation: "getBlock",
      })
    ).body;
  }
  async getTree(blockNumber: number) {
    return (
      await this.request<{ nodes: TreeNodeView[] }>(
        "GET",
        `/v1/blocks/${blockNumber}/tree`,
        undefined,
        { operation: "getTree" },
      )
    ).body;
  }
  async listAuctions(query: { status?: string; limit?: number; cursor?: string } = {}) {
    return (
      await this.request<Page<AuctionView>>(
        "GET",
        `/v1/data/auctions${queryOf(query)}`,
        undefined,
        { operation: "listAuctions" },
      )
    ).body;
  }
  /** Bids of closed auctions (an open auction's bids are sealed), newest first. */
  async listBids(query: { block?: number; prover?: string; limit?: number; cursor?: string } = {}) {
    return (
      await this.request<Page<BidItem>>("GET", `/v1/data/bids${queryOf(query)}`, undefined, {
        operation: "listBids",
      })
    ).body;
  }
}

/** A query string of the defined entries ("" when there are none). */
function queryOf(query: Record<string, string | number | undefined>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
  return qs.size > 0 ? `?${qs}` : "";
}
