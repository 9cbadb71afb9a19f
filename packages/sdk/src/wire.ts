// JSON shapes of the relay API v1 as they travel, taken from the contract: uint256 amounts as
// decimal strings, small integers (block numbers, slots, bps, counts, unix ms) as numbers,
// addresses checksummed. Requests are what a client sends (`z.input`), answers what the relay
// sends (`z.output` of the response schemas).
import type {
  auctionStatus,
  auctionTerms,
  auctionView,
  bidItem,
  blockView,
  ErrorBody as ContractErrorBody,
  cancelBidResponse,
  collateral,
  depositResponse,
  endSessionResponse,
  failResponse,
  heartbeatResponse,
  leasedJob,
  openAuctionResponse,
  proofView,
  proverView,
  quoteJson,
  relayInfo,
  resultResponse,
  sessionResponse,
  submitBidResponse,
  treeNode,
  txView,
  workerHardware,
  workerLogin,
} from "@prover-boost/contract";
import type { ErrorCode as ContractErrorCode } from "@prover-boost/core";
import type { z } from "zod";

/** The closed set of error codes this version of the contract defines. */
export type ErrorCode = ContractErrorCode;

type Hex = `0x${string}`;

/**
 * A request shape as this SDK sends it: the contract also accepts small integers as canonical
 * decimal strings, but the SDK always sends them as JSON numbers.
 */
type AsSent<T> = { [K in keyof T]: number extends T[K] ? number : T[K] };

/**
 * Auction terms as signed and sent by a sequencer. `slot` is a uint256: a JSON number up to
 * 2^53 - 1, a decimal string for any value.
 */
export type AuctionJson = AsSent<Omit<z.input<typeof auctionTerms>, "txsHash" | "slot">> & {
  txsHash: Hex;
  slot: number | string;
};

/** An EpochProofQuote as signed and sent by a prover operator. */
export type QuoteJson = z.output<typeof quoteJson>;

/** A WorkerLogin as signed and sent by a worker: every field is signed. */
export type WorkerLoginJson = AsSent<Omit<z.input<typeof workerLogin>, "operator" | "nonce">> & {
  operator: Hex;
  nonce: Hex;
};

/** What a worker runs on, sent beside the login (informational, unsigned). */
export type WorkerHardware = z.input<typeof workerHardware>;

/** A signed BidCancellation as sent: the bid it withdraws, when it was signed, the signature. */
export interface BidCancellationJson {
  bidId: Hex;
  issuedAt: number;
  signature: string;
}

export type AuctionStatus = z.output<typeof auctionStatus>;
export type AuctionView = z.output<typeof auctionView>;
/** GET /v1/data/bids: a bid of a closed auction, with its signature (verifiable as listed). */
export type BidItem = z.output<typeof bidItem>;
export type Collateral = z.output<typeof collateral>;
export type ProverView = z.output<typeof proverView>;
export type LeasedJob = z.output<typeof leasedJob>;
/** POST /v1/jobs/{id}/fail: requeued (with the hand-backs left to this worker) or failed. */
export type FailAnswer = z.output<typeof failResponse>;
export type BlockView = z.output<typeof blockView>;
/** GET /v1/blocks/{n}/proofs/{jobId}: an accepted proof and what verifying it needs. */
export type ProofView = z.output<typeof proofView>;
/** GET /v1/blocks/{n}/txs/{i}: a transaction's hash and uploaded bytes. */
export type TxView = z.output<typeof txView>;
export type PayoutJson = BlockView["payouts"][number];
/** The relay's answers, by operation. */
export type SessionAnswer = z.output<typeof sessionResponse>;
/** DELETE /v1/workers/sessions/current: the session ended, with the leases it gave back. */
export type EndSessionAnswer = z.output<typeof endSessionResponse>;
export type OpenAuctionAnswer = z.output<typeof openAuctionResponse>;
export type SubmitBidAnswer = z.output<typeof submitBidResponse>;
export type CancelBidAnswer = z.output<typeof cancelBidResponse>;
export type DepositAnswer = z.output<typeof depositResponse>;
export type HeartbeatAnswer = z.output<typeof heartbeatResponse>;
export type ResultAnswer = z.output<typeof resultResponse>;
export type TreeNodeView = z.output<typeof treeNode>;
/** GET /v1/info: what clients need to sign and schedule against this relay. */
export type RelayInfo = z.output<typeof relayInfo>;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export type ErrorBody = ContractErrorBody;
