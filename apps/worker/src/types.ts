// Public types of the worker library: options of startWorkers, the pool it returns, the events
// it reports and the proof backend interface.
import type { JobType } from "@prover-boost/core";
import type { LeasedJob, WorkerHardware } from "@prover-boost/sdk";
import type { Hex } from "viem";

/** A proof with its public inputs (32-byte fields), as a real proof system makes it. */
export interface BackendProof {
  proof: Hex;
  publicInputs: Hex[];
}

/**
 * Proves one leased job: a bare hex proof (no public inputs, as the simulated system's) or a
 * proof with its public inputs. Must stop (reject) promptly when `signal` aborts.
 */
export interface ProofBackend {
  name: string;
  prove(job: LeasedJob, signal: AbortSignal): Promise<Hex | BackendProof>;
  /** Releases what the backend holds (proving threads); called when the pool stops. */
  close?(): Promise<void>;
}

/** A pino-compatible logger (a pino instance fits). */
export interface WorkerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export type Hardware = WorkerHardware;

export interface WorkerOptions {
  relayUrl: string;
  /** The operator's private key; it signs each worker's WorkerLogin. */
  operatorKey: Hex;
  /** Worker sessions to open (each signs in as `<namePrefix>-<i>`). */
  workers: number;
  /** Concurrent jobs per worker; default 1. */
  capacity?: number;
  /** Job types to declare; default all five. */
  jobTypes?: JobType[];
  /** Hardware tier to sign (0-255); the relay's JOB_MIN_TIER decides what it may lease. Default 0. */
  tier?: number;
  backend: ProofBackend;
  /** Declared hardware; default this machine's cores and memory. */
  hardware?: Hardware;
  /** Long-poll wait of a lease request, 0..30000 ms; default 10000. */
  waitMs?: number;
  /** Worker id prefix; default the host name. */
  namePrefix?: string;
  /**
   * How long to keep sending a finished proof the relay does not answer (down, overloaded)
   * before dropping it, ms; default 600000 (10 min).
   */
  resultRetryBudgetMs?: number;
  /**
   * Stop the pool (a `fatal` event) after this many proofs in a row, across its workers, are
   * rejected as invalid (422, each a penalty); 0: never. Default 3.
   */
  maxRejections?: number;
  logger?: WorkerLogger;
  onEvent?: (e: WorkerEvent) => void;
  fetch?: typeof fetch;
}

export interface WorkerStats {
  /** Jobs leased from the relay. */
  leased: number;
  /** Results the relay accepted. */
  proven: number;
  /** Jobs handed back with failJob (backend errors, shutdown). */
  failed: number;
  /** Results the relay refused as invalid (422). */
  rejected: number;
  /** Jobs whose lease was lost (heartbeat or result 409, expired session, a hand-back unheard). */
  lost: number;
}

export interface WorkerPool {
  /**
   * Stops leasing, lets in-flight jobs finish within graceMs (default 30 s), hands back the rest.
   * Signs out as the stop begins (within min(3 s, graceMs), beside the drain) and once stopped
   * (within signOutMs, default 2 s). The offer of a proof in hand and the hand-back of each
   * unfinished job give up after handBackMs (default 10 s) from the drain's end.
   */
  stop(opts?: { graceMs?: number; signOutMs?: number; handBackMs?: number }): Promise<void>;
  stats(): WorkerStats;
}

export interface JobRef {
  id: string;
  type: JobType;
  blockNumber: number;
  level: number;
  index: number;
}

/** What the pool reports as it works; `worker` is the worker id. */
export type WorkerEvent =
  | { type: "signed_in"; worker: string; sessionId: string; expiresAt: number }
  /** A job was leased: by a lease request, or in the answer to the previous job's result. */
  | { type: "leased"; worker: string; job: JobRef; via: "lease" | "result" }
  | { type: "proven"; worker: string; job: JobRef; ms: number }
  | { type: "rejected"; worker: string; job: JobRef; message: string }
  | { type: "lost"; worker: string; job: JobRef; reason: string }
  | { type: "failed"; worker: string; job: JobRef; reason: string; retryable: boolean }
  | { type: "relay_error"; worker: string; op: string; message: string; retryInMs: number }
  /** A job was leased in an answer this agent cannot read (a newer relay?): handed back. */
  | { type: "unreadable"; worker: string; job: string; message: string }
  /** The relay refused something for good (a sign-in): the pool stops. */
  | { type: "fatal"; worker: string; op: string; message: string }
  /** A lease request was answered after `ms`, with a job or without. */
  | { type: "lease_answered"; worker: string; ms: number; leased: boolean }
  /** A heartbeat on a leased job was answered (ok) or failed. */
  | { type: "heartbeat"; worker: string; job: JobRef; ok: boolean }
  | { type: "stopped"; stats: WorkerStats };
