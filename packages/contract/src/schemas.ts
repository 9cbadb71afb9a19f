// Request and response bodies of the relay API v1, one section per resource. Request schemas parse
// the wire into typed values; response schemas describe the JSON the relay sends.
import { jobTypes, stages } from "@prover-boost/core";
import { z } from "zod";
import {
  address,
  blockNumber,
  blockNumberText,
  bps,
  bytes32,
  hexData,
  hexOut,
  hexProof,
  intOut,
  signature,
  smallInt,
  uint,
  uint32,
  uint256Int,
  uint256IntOut,
  uintString,
  uintText,
  weiOut,
} from "./primitives.ts";

const jobType = z.enum(jobTypes as [(typeof jobTypes)[number], ...(typeof jobTypes)[number][]]);
const stage = z.enum(stages);

// ---- Paging: one query shape and one cursor format for every list ----

/**
 * The position after which the next page starts: `<sort key>_<id>` of the last item sent, newest
 * first. Opaque to clients, who pass back `nextCursor`.
 */
export const cursorPattern = /^(\d{1,15})_([A-Za-z0-9:._x-]{1,120})$/;

export const pageQuery = z.object({
  limit: uintText(500, 1).default(100),
  cursor: z
    .string()
    .regex(cursorPattern, "cursor comes from nextCursor of the previous page")
    .optional(),
});

export const page = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    nextCursor: z
      .string()
      .nullable()
      .describe("pass as `cursor` for the next page; null at the end"),
  });

// ---- Health and relay info ----

export const livezResponse = z.object({ status: z.literal("ok") }).describe("The process is up");

export const readyzResponse = z
  .object({
    status: z.literal("ready"),
    database: z.literal("up"),
    redis: z.literal("up"),
    /** COLLATERAL=chain only: the escrow index is in step with a live, unchanged L1. */
    l1: z.literal("up").optional(),
  })
  .describe("Database and Redis answer (and, in chain mode, the L1 index is in step)");

export const metricsResponse = z.string().describe("Prometheus text exposition");

export const relayInfo = z
  .object({
    domain: z.object({
      name: z.string(),
      version: z.string(),
      chainId: intOut.optional(),
      verifyingContract: hexOut.optional(),
    }),
    slotDurationMs: intOut,
    genesisTimeMs: intOut,
    pricing: z.enum(["first", "second"]),
    leaseMs: intOut,
    /** priority, or affinity: among equally urgent jobs, a parent of a node the worker proved. */
    scheduling: z.enum(["priority", "affinity"]),
    /** Retryable fails of one job by one worker before it is no longer offered that job. */
    maxRetryableFailsPerWorker: intOut,
    /** The least signed hardware tier that may lease each job type (JOB_MIN_TIER). */
    jobMinTier: z.record(z.string(), intOut).optional(),
    signatureBackend: z.enum(["native", "js"]),
    /** The proof system of the auctions this relay opens (each auction records its own). */
    proofSystem: z.enum(["sim", "honk"]),
    /**
     * Where collateral is held: in the ledger (credited by the admin), or in the escrow contract
     * on the L1, where a deposit counts once its block has `confirmations` confirmations.
     */
    collateral: z.discriminatedUnion("mode", [
      z.object({ mode: z.literal("ledger") }),
      z.object({ mode: z.literal("chain"), escrow: hexOut, confirmations: intOut }),
    ]),
  })
  .describe("What clients need to sign and schedule against this relay");

// ---- Auctions ----

export const auctionTerms = z.object({
  blockNumber,
  /** Any uint256 (the auction's type). */
  slot: uint256Int,
  txCount: uint(65_536),
  txsHash: bytes32,
  blockReward: uintString,
  minBond: uintString,
  maxFeeBps: bps,
  biddingClosesAt: smallInt,
  proofDeadline: smallInt,
});

/** The proof systems a block can be proved with (the relay's PROOF_SYSTEM, fixed per auction). */
export const proofSystemName = z.enum(["sim", "honk"]);

export const openAuctionBody = z.object({
  auction: auctionTerms,
  txs: z.array(bytes32).max(65_536),
  /**
   * The transactions' data, in block order (optional): each keccak256(txData[i]) must be txs[i].
   * Stored with the auction; a base job's lease carries its transaction's data.
   */
  txData: z.array(hexData).max(65_536).optional(),
  signature,
});

export const quoteJson = z.object({
  epochToProve: intOut,
  validUntilSlot: uint256IntOut,
  bondAmount: weiOut,
  prover: hexOut,
  basisPointFee: intOut,
});

export const auctionStatus = z.enum(["open", "committed", "unclaimed"]);

export const auctionView = z
  .object({
    blockNumber: intOut,
    slot: uint256IntOut,
    txCount: intOut,
    txsHash: hexOut,
    blockReward: weiOut,
    minBond: weiOut,
    maxFeeBps: intOut,
    biddingClosesAt: intOut,
    proofDeadline: intOut,
    sequencer: hexOut,
    status: auctionStatus,
    bidCount: intOut,
    createdAt: intOut,
    closedAt: intOut.nullable(),
    winner: z.object({ bidId: z.string(), quote: quoteJson, signature: hexOut }).nullable(),
    settlementFeeBps: intOut.nullable(),
    proofSystem: proofSystemName,
  })
  .describe("An auction; its bids stay sealed (a count only) while it is open");

export const openAuctionResponse = z
  .object({ auction: auctionView, status: z.literal("open") })
  .describe("The auction is open");

export const listAuctionsQuery = pageQuery.extend({
  status: auctionStatus.optional(),
  sequencer: address.optional(),
  block: blockNumberText.optional(),
});

// ---- Bids ----

export const quoteBody = z.object({
  epochToProve: blockNumber,
  /** Any uint256 (the quote's type): a value beyond every slot never expires. */
  validUntilSlot: uint256Int,
  bondAmount: uintString,
  prover: address,
  /** Any uint32 (the quote's type); above the auction's maxFeeBps it is 422 FEE_ABOVE_CAP. */
  basisPointFee: uint32,
});

export const bidBody = z.object({ quote: quoteBody, signature });

export const submitBidResponse = z
  .object({ bidId: z.string(), status: z.literal("accepted") })
  .describe("The bid is recorded (a replay of the same signed quote gets the same answer)");

export const cancelBidParams = z.object({ blockNumber: blockNumberText, prover: address });

/** A signed BidCancellation(bytes32 bidId,address prover,uint64 issuedAt); the prover is the path's. */
export const cancelBidBody = z.object({ bidId: bytes32, issuedAt: smallInt, signature });

export const cancelBidResponse = z
  .object({ bidId: z.string(), status: z.literal("cancelled") })
  .describe("The bid is withdrawn and its bond released");

export const bidItem = z.object({
  bidId: z.string(),
  blockNumber: intOut,
  prover: hexOut,
  basisPointFee: intOut,
  bondAmount: weiOut,
  validUntilSlot: uint256IntOut,
  status: z.string(),
  signature: hexOut,
  createdAt: intOut,
});

export const listBidsQuery = pageQuery.extend({
  block: blockNumberText.optional(),
  prover: address.optional(),
});

// ---- Workers and jobs ----

/** The signed WorkerLogin: every session term, and a single-use 32-byte nonce. */
export const workerLogin = z.object({
  operator: address,
  workerId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "1-64 characters of A-Z a-z 0-9 . _ -"),
  capacity: z.number().int().min(1).max(256),
  jobTypes: z.array(jobType).min(1).max(jobTypes.length),
  /** Hardware tier (uint8): decides which job types the worker may lease (JOB_MIN_TIER). */
  tier: z.number().int().min(0).max(255),
  nonce: bytes32,
  issuedAt: smallInt,
});

/**
 * Text the relay can store as JSON in Postgres: no NUL and no lone UTF-16 surrogate (jsonb refuses
 * both). In a `u` regex a surrogate pair is one character, so only a lone surrogate matches.
 */
const storableText = (v: string) => !v.includes("\u0000") && !/[\uD800-\uDFFF]/u.test(v);

/** At most this many fields in a worker's `hardware`, each key at most HARDWARE_KEY_MAX long. */
export const HARDWARE_FIELDS_MAX = 32;
export const HARDWARE_KEY_MAX = 64;

/**
 * What the worker runs on: informational and unsigned (the signed `tier` decides leasing). Kept
 * small (HARDWARE_FIELDS_MAX fields, keys of HARDWARE_KEY_MAX, strings of 200): it is stored with
 * the session and listed publicly, and anyone may sign in.
 */
export const workerHardware = z
  .object({
    cores: z.number().int().min(0).max(100_000).optional(),
    memoryMb: z.number().int().min(0).max(1e9).optional(),
    gpus: z.number().int().min(0).max(1024).optional(),
  })
  .catchall(
    z.union([
      z.string().max(200).refine(storableText, "no NUL or lone surrogate"),
      z.number(),
      z.boolean(),
    ]),
  )
  .superRefine((hardware, ctx) => {
    const keys = Object.keys(hardware);
    if (keys.length > HARDWARE_FIELDS_MAX) {
      ctx.addIssue({
        code: "custom",
        path: [],
        message: `at most ${HARDWARE_FIELDS_MAX} hardware fields`,
      });
    }
    for (const key of keys) {
      if (key.length > HARDWARE_KEY_MAX) {
        ctx.addIssue({
          code: "custom",
          path: [key.slice(0, HARDWARE_KEY_MAX)],
          message: `a hardware key is at most ${HARDWARE_KEY_MAX} characters`,
        });
      }
      if (!storableText(key)) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: "a hardware key has no NUL or lone surrogate",
        });
      }
    }
  });

export const sessionBody = z.object({
  login: workerLogin,
  hardware: workerHardware.default({}),
  signature,
});

export const sessionResponse = z
  .object({ token: z.string(), expiresAt: intOut, sessionId: z.string() })
  .describe("A bearer token for the job calls, valid until expiresAt");

/** Optional: a sign-out sent with no body keeps nothing. */
export const endSessionBody = z
  .object({
    keep: z
      .array(z.string().max(64))
      .max(1024)
      .default([])
      .describe("Jobs the worker still holds and will hand in or give back itself"),
  })
  .nullish();

export const endSessionResponse = z
  .object({ sessionId: z.string(), released: intOut })
  .describe("The session ended; `released`: the leases it still held, given back");

export const leaseBody = z
  .object({ waitMs: z.number().int().min(0).max(30_000).default(0) })
  .default({ waitMs: 0 });

export const leasedJob = z.object({
  id: z.string(),
  type: jobType,
  blockNumber: intOut,
  level: intOut,
  index: intOut,
  inputs: z.array(hexOut),
  /** The proof system the block is proved with: the result must be a proof of this system. */
  proofSystem: proofSystemName,
  /** A base job's transaction data as the sequencer uploaded it; null when none was uploaded. */
  txData: hexOut.nullable().optional(),
  /**
   * The children's accepted public outputs, left to right (what this node is proved over; not
   * their proofs). `proof` repeats `output` for clients written for the simulated system, where a
   * node's output is its proof.
   */
  children: z.array(z.object({ id: z.string(), output: hexOut, proof: hexOut })),
  leaseExpiresAt: intOut,
});

export const leaseResponse = z.object({ job: leasedJob }).describe("A job leased to this worker");

export const jobParams = z.object({ id: z.string().max(64) });

export const heartbeatResponse = z
  .object({ leaseExpiresAt: intOut })
  .describe("The lease is extended");

export const resultBody = z.object({
  proof: hexProof,
  /** The proof's public inputs (32-byte fields); empty for the simulated system. */
  publicInputs: z.array(bytes32).max(64).default([]),
  /**
   * Once the proof is accepted, also lease the worker's next job in the same request: the one
   * `POST /v1/jobs/lease` with `waitMs: 0` would give now (no waiting), answered as `next`.
   */
  next: z.boolean().default(false),
});

export const resultResponse = z
  .object({
    status: z.literal("accepted"),
    /**
     * Asked for with `next: true`: the job now leased to this worker, or null when none was ready
     * (or the relay is shedding new leases); then lease as usual. Absent when not asked for.
     */
    next: leasedJob.nullable().optional(),
  })
  .describe("The proof is verified and recorded");

export const failBody = z.object({
  reason: z.string().max(500),
  retryable: z.boolean(),
  /**
   * The worker is stopping (SIGTERM) and releases a job it has not finished: the job goes back
   * to the queue counted as no fail (no attempt, no bar, no penalty); `retryable` is ignored.
   */
  shutdown: z.boolean().default(false),
});

/** Requeued (with the hand-backs left to this worker), failed, or released on shutdown. */
export const failResponse = z
  .union([
    z.object({ status: z.literal("requeued"), retriesLeft: intOut }),
    z.object({ status: z.literal("failed") }),
    z.object({ status: z.literal("released") }),
  ])
  .describe("The job went back to the queue, is failed, or was released uncounted");

export const workerItem = z.object({
  sessionId: z.string(),
  operator: hexOut,
  workerId: z.string(),
  capacity: intOut,
  jobTypes: z.array(z.string()),
  /** The signed hardware tier. */
  tier: intOut,
  hardware: z.record(z.string(), z.unknown()),
  leases: intOut,
  expiresAt: intOut,
  createdAt: intOut,
});

export const listWorkersQuery = pageQuery.extend({ operator: address.optional() });

// ---- Blocks ----

export const blockView = z
  .object({
    number: intOut,
    stage,
    stages: z.partialRecord(stage, intOut),
    winner: hexOut.nullable(),
    feeBps: intOut.nullable(),
    tree: z.object({ total: intOut, proven: intOut, leased: intOut, queued: intOut }),
    rootProof: hexOut.nullable(),
    /**
     * The proof deadline in force (unix ms): the auction's, extended by the time the proof fabric
     * was down or the tree was not yet fanned out. Null for a block without an auction.
     */
    proofDeadline: intOut.nullable(),
    /** The proof fabric is down now: the deadline waits until it is back, and is then extended. */
    deadlinePaused: z.boolean(),
    payouts: z.array(
      z.object({
        recipient: hexOut,
        role: z.enum(["sequencer", "prover", "submitter"]),
        amount: weiOut,
      }),
    ),
  })
  .describe("A block's stage history, tree progress, root proof and payouts");

export const treeNode = z.object({
  id: z.string(),
  type: jobType,
  level: intOut,
  index: intOut,
  status: z.enum(["queued", "leased", "proven", "failed"]),
  worker: z.string().nullable(),
  children: z.array(z.string()),
  /** The operator whose worker holds the lease or delivered the proof. */
  operator: hexOut.nullable(),
  /** When the accepted proof was recorded (unix ms); null until proven. */
  provenAt: intOut.nullable(),
  /** Leases of this node that lapsed (withholding penalties recorded against it). */
  lapses: intOut,
});

export const txParams = z.object({
  blockNumber: blockNumberText,
  /** A position in the block (txCount is at most 65536): canonical decimal, like block numbers. */
  index: uintText(65_535),
});

export const txView = z
  .object({ blockNumber: intOut, index: intOut, hash: hexOut, data: hexOut })
  .describe("A transaction of a block as the sequencer uploaded it: its hash and its bytes");

export const proofParams = z.object({
  blockNumber: blockNumberText,
  jobId: z.string().max(64),
});

export const proofView = z
  .object({
    blockNumber: intOut,
    jobId: z.string(),
    type: jobType,
    level: intOut,
    index: intOut,
    proofSystem: proofSystemName,
    circuit: z.string(),
    proof: hexOut,
    publicInputs: z.array(hexOut),
    /** The public output the parent consumed. */
    output: hexOut,
    /** The circuit's verification key ("0x" for the simulated system). */
    verificationKey: hexOut,
  })
  .describe("An accepted proof of one node, with what is needed to verify it independently");

export const treeView = z.object({ nodes: z.array(treeNode) }).describe("A block's proof tree");

export const blockEvents = z
  .string()
  .describe(
    "Server-sent events: `stage` { block, stage, at } and `job` { block, id, type, status, worker }",
  );

/** A position in the market's event log, `<txid>-<id>`; `0-0` is its start. */
export const eventId = z
  .string()
  .regex(/^(0|[1-9]\d{0,17})-(0|[1-9]\d{0,17})$/, "an event id: <txid>-<id>");

export const marketEventsQuery = z.object({
  block: blockNumberText.optional(),
  prover: address.optional(),
  /** For clients that cannot send the Last-Event-ID header; the header wins when both are sent. */
  lastEventId: eventId.optional(),
});

export const marketEvents = z
  .string()
  .describe(
    "Server-sent events, each with an `id:`: `auction` { block, kind: opened | closed | " +
      "unclaimed, ... }, `stage` { block, stage, at }, `job` { block, id, type, status, worker }, " +
      "`payout` { block, recipient, role, amount }, `penalty` { block, jobId, operator, worker, " +
      "kind, amount }; `reset` { head } when a resume id is no longer retained",
  );

// ---- Provers, payouts, penalties ----

export const proverParams = z.object({ address });

/** A prover's public collateral; bonds of live (sealed) bids are inside `available`. */
export const collateral = z.object({
  deposited: weiOut,
  locked: weiOut,
  slashed: weiOut,
  available: weiOut,
});

export const penaltyKind = z.enum(["withholding", "invalid_proof", "slash"]);

export const proverView = z
  .object({
    address: hexOut,
    collateral,
    blocksWon: intOut,
    proofsDelivered: intOut,
    penalties: intOut,
    penaltiesByKind: z.partialRecord(penaltyKind, intOut),
    slashes: intOut,
    /** Wei paid to this address: rewards, and slash compensation for sequencers. */
    earnings: weiOut,
  })
  .describe("A prover's collateral and record");

export const payoutItem = z.object({
  blockNumber: intOut,
  recipient: hexOut,
  role: z.enum(["sequencer", "prover", "submitter"]),
  amount: weiOut,
  createdAt: intOut,
});

export const listPayoutsQuery = pageQuery.extend({
  block: blockNumberText.optional(),
  recipient: address.optional(),
});

export const penaltyItem = z.object({
  blockNumber: intOut.nullable(),
  jobId: z.string().nullable(),
  operator: hexOut,
  worker: z.string().nullable(),
  kind: penaltyKind,
  amount: weiOut,
  createdAt: intOut,
});

export const listPenaltiesQuery = pageQuery.extend({
  block: blockNumberText.optional(),
  operator: address.optional(),
});

// ---- Admin ----

export const depositBody = z.object({
  prover: address,
  amount: uintString.refine((v) => v > 0n, "must be positive"),
  /**
   * The admin's own id for this credit (a transfer's id, say): the same deposit sent again with
   * it credits once. Without one, every request credits.
   */
  reference: z
    .string()
    .regex(/^[\x21-\x7e]{1,128}$/, "1 to 128 printable ASCII characters, no spaces")
    .optional(),
});

export const depositResponse = z
  .object({
    prover: hexOut,
    amount: weiOut,
    status: z.literal("credited"),
    reference: z.string().optional(),
    /** true when this reference had already credited the same deposit: nothing was added now. */
    replayed: z.boolean().optional(),
  })
  .describe("The amount is credited to the prover's available collateral");
