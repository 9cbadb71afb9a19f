// Everything a route handler may use, built once at start-up and passed down.
import type { RelayEnv } from "@prover-boost/config";
import type { DomainConfig, SignatureBackend, SlotClock } from "@prover-boost/core";
import type { BidWriteOutcome, Database, JobMark, Prisma } from "@prover-boost/db";
import type { LesseeWakeups, ProofBroker, ProofFabric } from "@prover-boost/queue";
import type { CachedTerms, PendingBid } from "./services/bids.ts";
import type { GroupCommit, LanedGroupCommit } from "./services/group-commit.ts";
import type { BlockRegistry } from "./services/registry.ts";

export interface RelayContext {
  env: RelayEnv;
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
  bidIngest: {
    terms: Map<number, CachedTerms>;
    batcher: LanedGroupCommit<PendingBid, BidWriteOutcome>;
  };
  /** Job bookkeeping (lease marks, accepted proofs), group-committed to Postgres. */
  jobMarks: GroupCommit<JobMark, boolean>;
}
