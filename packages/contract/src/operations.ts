// Every operation of the relay API: method, path, id, who may call it, its request schemas, its
// success responses with their real statuses, and the error codes it can answer with. The relay
// registers its handlers against these entries, the SDK takes its types from them, and the
// contract test checks every answer against them.
import type { ErrorCode } from "@prover-boost/core";
import { z } from "zod";
import { blockParam } from "./primitives.ts";
import * as s from "./schemas.ts";

/** A success response with no body (204). */
export const noContent = z.null().describe("No content");

export interface Operation {
  operationId: string;
  method: "GET" | "POST" | "DELETE";
  /** Fastify path syntax (`:param`). */
  path: string;
  tags: string[];
  summary: string;
  description?: string;
  /** Bearer authentication: a worker session token or the admin token. */
  auth?: "worker" | "admin";
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Success statuses and their bodies. */
  responses: Record<number, z.ZodType>;
  /** Error codes this operation answers with besides the ones every operation may send. */
  errors: readonly ErrorCode[];
  /** The body is not JSON (text or an event stream). */
  contentType?: string;
}

const op = <const T extends Operation>(o: T): T => o;

export const operations = {
  livez: op({
    operationId: "livez",
    method: "GET",
    path: "/livez",
    tags: ["ops"],
    summary: "Process is up",
    responses: { 200: s.livezResponse },
    errors: [],
  }),
  readyz: op({
    operationId: "readyz",
    method: "GET",
    path: "/readyz",
    tags: ["ops"],
    summary: "Database, Redis and, in chain mode, the L1 reachable (503 names what is down)",
    responses: { 200: s.readyzResponse },
    errors: [],
  }),
  metrics: op({
    operationId: "metrics",
    method: "GET",
    path: "/metrics",
    tags: ["ops"],
    summary: "Prometheus metrics",
    responses: { 200: s.metricsResponse },
    errors: [],
    contentType: "text/plain",
  }),
  getInfo: op({
    operationId: "getInfo",
    method: "GET",
    path: "/v1/info",
    tags: ["public"],
    summary: "Signing domain, slot clock, pricing, lease and scheduling rules",
    responses: { 200: s.relayInfo },
    errors: [],
  }),
  openAuction: op({
    operationId: "openAuction",
    method: "POST",
    path: "/v1/auctions",
    tags: ["sequencer"],
    summary: "Open a proving auction for a block",
    body: s.openAuctionBody,
    responses: { 201: s.openAuctionResponse },
    errors: [
      "BAD_SIGNATURE",
      "SIGNER_NOT_ALLOWED",
      "TX_COUNT_MISMATCH",
      "TXS_HASH_MISMATCH",
      "TX_DATA_MISMATCH",
      "INVALID_SCHEDULE",
      "AUCTION_EXISTS",
      "REWARD_NOT_FUNDED",
      "AMOUNT_TOO_LARGE",
    ],
  }),
  getAuction: op({
    operationId: "getAuction",
    method: "GET",
    path: "/v1/auctions/:blockNumber",
    tags: ["sequencer"],
    summary: "Read an auction (bids sealed while open)",
    params: blockParam,
    responses: { 200: s.auctionView },
    errors: ["AUCTION_NOT_FOUND"],
  }),
  submitBid: op({
    operationId: "submitBid",
    method: "POST",
    path: "/v1/bids",
    tags: ["prover"],
    summary: "Submit a signed EpochProofQuote",
    body: s.bidBody,
    responses: { 202: s.submitBidResponse },
    errors: [
      "BAD_SIGNATURE",
      "AUCTION_NOT_FOUND",
      "AUCTION_CLOSED",
      "BID_SUPERSEDED",
      "FEE_ABOVE_CAP",
      "BOND_BELOW_MINIMUM",
      "QUOTE_EXPIRED",
      "WRONG_BLOCK",
      "INSUFFICIENT_COLLATERAL",
      "AMOUNT_TOO_LARGE",
      "L1_UNAVAILABLE",
    ],
  }),
  cancelBid: op({
    operationId: "cancelBid",
    method: "DELETE",
    path: "/v1/bids/:blockNumber/:prover",
    tags: ["prover"],
    summary: "Withdraw an open bid with a signed BidCancellation",
    description:
      "Cancels exactly the bid `bidId` names, once (a replay is 409 AUTHORIZATION_REPLAYED). " +
      "`issuedAt` (unix ms) may not be ahead of the relay's clock at all (401 ISSUED_IN_FUTURE; " +
      "sign with the current time or a little before) nor older than LOGIN_MAX_AGE_MS " +
      "(401 LOGIN_STALE). Every refusal changes nothing.",
    params: s.cancelBidParams,
    body: s.cancelBidBody,
    responses: { 200: s.cancelBidResponse },
    errors: [
      "BAD_SIGNATURE",
      "LOGIN_STALE",
      "ISSUED_IN_FUTURE",
      "AUCTION_NOT_FOUND",
      "BID_NOT_FOUND",
      "AUCTION_CLOSED",
      "AUTHORIZATION_REPLAYED",
    ],
  }),
  createSession: op({
    operationId: "createSession",
    method: "POST",
    path: "/v1/workers/sessions",
    tags: ["worker"],
    summary: "Sign a worker in with an operator-signed WorkerLogin",
    body: s.sessionBody,
    responses: { 201: s.sessionResponse },
    errors: [
      "BAD_SIGNATURE",
      "LOGIN_STALE",
      "ISSUED_IN_FUTURE",
      "AUTHORIZATION_REPLAYED",
      "TIER_TOO_LOW",
    ],
  }),
  endSession: op({
    operationId: "endSession",
    method: "DELETE",
    path: "/v1/workers/sessions/current",
    tags: ["worker"],
    summary: "Sign a worker out: no new lease, and the leases it still holds go back",
    description:
      "For a worker agent that is stopping: the session takes no new lease from then on, on " +
      "any relay (a lease request is refused as SESSION_EXPIRED, or, on a relay that has not " +
      "read the session again yet, answered 204 while no job is in reach; the calls on the " +
      "leases it holds are still served), and every lease it holds but for the jobs in `keep` " +
      "goes back to the queue with no lapse and no penalty (`released`), as `fail` with " +
      "`shutdown: true` releases a job, within the same bound (the session's capacity in " +
      "releases). `keep`: the jobs the agent is still running, to hand in or give back itself. " +
      "The others are leases it never heard of: a long poll answered with a job as the agent " +
      "cut it short. Served to an expired session too, for as long as the calls on its " +
      "leases are; sent again (with less to keep, once the agent has stopped) it releases " +
      "what is left. `released`: the leases it gave back (past the bound, as counted fails).",
    auth: "worker",
    body: s.endSessionBody,
    responses: { 200: s.endSessionResponse },
    errors: ["UNAUTHORIZED", "SESSION_EXPIRED"],
  }),
  leaseJob: op({
    operationId: "leaseJob",
    method: "POST",
    path: "/v1/jobs/lease",
    tags: ["worker"],
    summary: "Lease a job (long poll up to waitMs)",
    auth: "worker",
    body: s.leaseBody,
    responses: { 200: s.leaseResponse, 204: noContent.describe("No job came within waitMs") },
    errors: ["UNAUTHORIZED", "SESSION_EXPIRED", "CAPACITY_EXCEEDED"],
  }),
  heartbeat: op({
    operationId: "heartbeat",
    method: "POST",
    path: "/v1/jobs/:id/heartbeat",
    tags: ["worker"],
    summary: "Extend a lease",
    auth: "worker",
    params: s.jobParams,
    responses: { 200: s.heartbeatResponse },
    errors: ["UNAUTHORIZED", "SESSION_EXPIRED", "JOB_NOT_FOUND", "LEASE_LOST"],
  }),
  submitResult: op({
    operationId: "submitResult",
    method: "POST",
    path: "/v1/jobs/:id/result",
    tags: ["worker"],
    summary: "Hand back a proof",
    description:
      "With `next: true`, an accepted proof's answer also carries the worker's next job " +
      "(`next`), leased as `POST /v1/jobs/lease` with `waitMs: 0` would lease it, or null when " +
      "none is ready: one request instead of two for a worker that keeps proving, and a parent " +
      "this proof made ready is leased with no second round trip. The result's own answer and " +
      "errors are unchanged; a lease that cannot be made is simply null.",
    auth: "worker",
    params: s.jobParams,
    body: s.resultBody,
    responses: { 200: s.resultResponse },
    errors: ["UNAUTHORIZED", "SESSION_EXPIRED", "JOB_NOT_FOUND", "LEASE_LOST", "INVALID_PROOF"],
  }),
  failJob: op({
    operationId: "failJob",
    method: "POST",
    path: "/v1/jobs/:id/fail",
    tags: ["worker"],
    summary: "Give a job back (retryable) or fail it",
    description:
      "Retryable: the job goes back to the queue and the answer says how many more times " +
      "this worker may hand it back (`retriesLeft`); at 0 it is not offered this job again " +
      "(MAX_RETRYABLE_FAILS_PER_WORKER; all of an operator's worker ids together: " +
      "MAX_JOB_FAILS_PER_OPERATOR). At the job's MAX_JOB_ATTEMPTS failed attempts (by " +
      "anyone) it is failed instead (`status: failed`). Not retryable: the job is failed and " +
      "this worker is not offered it again. A job every eligible worker is barred from waits " +
      "for a new worker or for the proof deadline (open proving). `shutdown: true` (a worker " +
      "stopping on SIGTERM) releases the job instead: it goes back to the queue counted as " +
      "no fail, no attempt and no penalty (`status: released`).",
    auth: "worker",
    params: s.jobParams,
    body: s.failBody,
    responses: { 200: s.failResponse },
    errors: ["UNAUTHORIZED", "SESSION_EXPIRED", "JOB_NOT_FOUND", "LEASE_LOST"],
  }),
  getBlock: op({
    operationId: "getBlock",
    method: "GET",
    path: "/v1/blocks/:blockNumber",
    tags: ["public"],
    summary: "A block's stage, tree progress and payouts",
    params: blockParam,
    responses: { 200: s.blockView },
    errors: ["BLOCK_NOT_FOUND"],
  }),
  getTree: op({
    operationId: "getTree",
    method: "GET",
    path: "/v1/blocks/:blockNumber/tree",
    tags: ["public"],
    summary: "A block's proof tree",
    params: blockParam,
    responses: { 200: s.treeView },
    errors: ["BLOCK_NOT_FOUND"],
  }),
  getTx: op({
    operationId: "getTx",
    method: "GET",
    path: "/v1/blocks/:blockNumber/txs/:index",
    tags: ["public"],
    summary: "A transaction's bytes, by its position in the block",
    description:
      "The data the sequencer uploaded with the auction (txData); keccak256(data) is the hash. " +
      "404 TX_NOT_FOUND when the block has no such transaction or none was uploaded.",
    params: s.txParams,
    responses: { 200: s.txView },
    errors: ["TX_NOT_FOUND"],
  }),
  getProof: op({
    operationId: "getProof",
    method: "GET",
    path: "/v1/blocks/:blockNumber/proofs/:jobId",
    tags: ["public"],
    summary: "An accepted proof of one node of a block, with its verification key",
    description:
      "The proof as the relay verified and accepted it: proof system, circuit, proof, public " +
      "inputs and the circuit's verification key, enough to verify the node independently " +
      "(for honk, with bb.js's UltraHonkVerifierBackend).",
    params: s.proofParams,
    responses: { 200: s.proofView },
    errors: ["PROOF_NOT_FOUND"],
  }),
  blockEvents: op({
    operationId: "blockEvents",
    method: "GET",
    path: "/v1/blocks/:blockNumber/events",
    tags: ["public"],
    summary: "Server-sent events of a block's stages and jobs",
    description:
      "Idle streams get a comment line every SSE_KEEPALIVE_MS. On a database error the " +
      "stream ends with an `error` event (the usual error body) and a `retry:` hint. " +
      "At most SSE_STREAMS_PER_IP streams per client IP (429) and SSE_STREAMS_MAX in all (503).",
    params: blockParam,
    responses: { 200: s.blockEvents },
    errors: ["BLOCK_NOT_FOUND"],
    contentType: "text/event-stream",
  }),
  marketEvents: op({
    operationId: "marketEvents",
    method: "GET",
    path: "/v1/events",
    tags: ["public"],
    summary: "Server-sent events of every auction and block",
    description:
      "Every event has an `id:`; a client reconnecting with Last-Event-ID (or `?lastEventId=`) " +
      "gets exactly the events after it while that id is retained (EVENTS_RETENTION_MS), on any " +
      "relay; an id no longer retained gets a `reset` event, then live events. Filters: " +
      "`block`, `prover` (the events concerning that address). The stream starts with a " +
      "`retry:` line; idle streams get a comment line every SSE_KEEPALIVE_MS. A client that " +
      "leaves more than SSE_MAX_BUFFER_BYTES unread is dropped (it resumes by id). On a " +
      "database error the stream ends with an `error` event. At most SSE_STREAMS_PER_IP " +
      "streams per client IP (429) and SSE_STREAMS_MAX in all (503), both routes together.",
    query: s.marketEventsQuery,
    responses: { 200: s.marketEvents },
    errors: [],
    contentType: "text/event-stream",
  }),
  getProver: op({
    operationId: "getProver",
    method: "GET",
    path: "/v1/provers/:address",
    tags: ["public"],
    summary: "A prover's collateral and record",
    params: s.proverParams,
    responses: { 200: s.proverView },
    errors: [],
  }),
  listAuctions: op({
    operationId: "listAuctions",
    method: "GET",
    path: "/v1/data/auctions",
    tags: ["data"],
    summary: "Auctions, newest block first",
    query: s.listAuctionsQuery,
    responses: { 200: s.page(s.auctionView).describe("A page of auctions") },
    errors: [],
  }),
  listBids: op({
    operationId: "listBids",
    method: "GET",
    path: "/v1/data/bids",
    tags: ["data"],
    summary: "Bids of closed auctions (open auctions' bids stay sealed)",
    query: s.listBidsQuery,
    responses: { 200: s.page(s.bidItem).describe("A page of bids, newest first") },
    errors: [],
  }),
  listPayouts: op({
    operationId: "listPayouts",
    method: "GET",
    path: "/v1/data/payouts",
    tags: ["data"],
    summary: "Reward payouts",
    query: s.listPayoutsQuery,
    responses: { 200: s.page(s.payoutItem).describe("A page of payouts, newest first") },
    errors: [],
  }),
  listPenalties: op({
    operationId: "listPenalties",
    method: "GET",
    path: "/v1/data/penalties",
    tags: ["data"],
    summary: "Penalties: withholding, invalid proofs, slashes",
    query: s.listPenaltiesQuery,
    responses: { 200: s.page(s.penaltyItem).describe("A page of penalties, newest first") },
    errors: [],
  }),
  listWorkers: op({
    operationId: "listWorkers",
    method: "GET",
    path: "/v1/workers",
    tags: ["data"],
    summary: "Signed-in workers with their declared capacity, job types and hardware",
    query: s.listWorkersQuery,
    responses: { 200: s.page(s.workerItem).describe("A page of signed-in workers, newest first") },
    errors: [],
  }),
  deposit: op({
    operationId: "deposit",
    method: "POST",
    path: "/v1/admin/deposits",
    tags: ["admin"],
    summary: "Credit a prover's collateral (ledger mode; 409 COLLATERAL_ON_CHAIN in chain mode)",
    auth: "admin",
    body: s.depositBody,
    responses: {
      201: s.depositResponse,
      200: s.depositResponse.describe(
        "This reference already credited the same deposit: nothing more is credited (replayed)",
      ),
    },
    errors: [
      "UNAUTHORIZED",
      "SIGNER_NOT_ALLOWED",
      "AMOUNT_TOO_LARGE",
      "COLLATERAL_ON_CHAIN",
      "REFERENCE_REUSED",
    ],
  }),
} as const;

export type OperationId = keyof typeof operations;

/** Codes any operation may answer with: bad input, rate limits, a relay fault, a dependency down. */
export const commonErrors = [
  "VALIDATION_FAILED",
  "RATE_LIMITED",
  "INTERNAL",
  "UNAVAILABLE",
] as const satisfies readonly ErrorCode[];

/** Codes any operation with a JSON body may also answer with. */
export const bodyErrors = [
  "INVALID_JSON",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
] as const satisfies readonly ErrorCode[];

/** Codes any operation with path parameters, a query or a body may also answer with. */
export const inputErrors = [
  "BAD_ADDRESS_CHECKSUM",
  "INVALID_INTEGER",
] as const satisfies readonly ErrorCode[];

/** Every error code an operation can answer with. */
export function errorsOf(o: Operation): ErrorCode[] {
  return [
    ...new Set<ErrorCode>([
      ...commonErrors,
      ...(o.params || o.query || o.body ? inputErrors : []),
      ...(o.body ? bodyErrors : []),
      ...o.errors,
    ]),
  ];
}

/** The body a success status of an operation carries, as sent. */
export type ResponseOf<
  K extends OperationId,
  S extends keyof (typeof operations)[K]["responses"],
> = (typeof operations)[K]["responses"][S] extends z.ZodType
  ? z.output<(typeof operations)[K]["responses"][S]>
  : never;
