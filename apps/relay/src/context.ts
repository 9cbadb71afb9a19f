// What the relay's services and routes share, built once at start-up (relay.ts, the composition
// root) and passed down. It holds built services and typed settings, never the environment.

import type { EscrowIndexer } from "@prover-boost/chain";
import type { DomainConfig, SignatureBackend, SlotClock } from "@prover-boost/core";
import type { Database, JobMark, Prisma, ProofStore } from "@prover-boost/db";
import type { LesseeWakeups, ProofBroker, ProofFabric } from "@prover-boost/queue";
import type { LimitFunction } from "p-limit";
import type { RelayMetrics } from "./domain-metrics.ts";
import type { BidIngest } from "./services/bid-ingest.ts";
import type { EventHub } from "./services/event-hub.ts";
import type { GroupCommit } from "./services/group-commit.ts";
import type { LeaseMarks } from "./services/lease-marks.ts";
import type { Arrivals, LoopLag } from "./services/load.ts";
import type { ProofVerifiers } from "./services/proof-check.ts";
import type { BlockRegistry } from "./services/registry.ts";
import type { TxDataReader } from "./services/tx-data.ts";
import type { RelaySettings } from "./settings.ts";

export interface RelayContext {
  settings: RelaySettings;
  db: Database;
  prisma: Prisma;
  fabric: ProofFabric;
  /** The lease lifecycle: lease, heartbeat, complete, give back, fail, lapse (LEASE_MS). */
  broker: ProofBroker;
  registry: BlockRegistry;
  /** Long-polling lessees, woken one per ready job (or all on a broad announcement). */
  wakeups: LesseeWakeups;
  domain: DomainConfig;
  clock: SlotClock;
  /** Forced signature path, or undefined for native-when-available. */
  signatureBackend: SignatureBackend | undefined;
  now: () => number;
  /** Bid ingest: cached immutable auction terms and the group-commit writer. */
  bidIngest: BidIngest;
  /** COLLATERAL=chain: the escrow indexer; bids need it in step with the L1. */
  escrowIndex: EscrowIndexer | null;
  /** Job bookkeeping (lease marks, accepted proofs), group-committed to Postgres. */
  jobMarks: GroupCommit<JobMark, boolean>;
  /** Granted leases' records, written through jobMarks after each lease is answered. */
  leaseMarks: LeaseMarks;
  /** Base jobs' transaction data for lease answers (remembered per block, batched reads). */
  txData: TxDataReader;
  /** A verifier per proof system; every submitted proof is checked by its block's. */
  verifiers: ProofVerifiers;
  /** The one reader of the market's event log, shared by every event stream. */
  events: EventHub;
  /** Accepted real proofs, stored once (the simulated system's live in ProofJob.proof). */
  proofStore: ProofStore;
  /** Market metrics (domain-metrics.ts), served with the HTTP ones at GET /metrics. */
  metrics: RelayMetrics;
  /**
   * How far behind this relay is (its event loop's recent delay), and the lease holders'
   * requests it has read but not answered yet (services/load.ts).
   */
  load: { lag: LoopLag; arrivals: Arrivals };
  /**
   * Runs lease attempts at most LEASE_CONCURRENCY at a time (services/gateway.ts): a granted
   * lease's answer then waits behind a few other attempts, not behind every long poll woken.
   */
  leaseGate: LimitFunction;
}
