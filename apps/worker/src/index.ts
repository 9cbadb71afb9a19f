// @prover-boost/worker: the prover worker agent as a library (the CLI is src/cli.ts).
export {
  defaultSimDurationsMs,
  type ExecBackendOptions,
  execBackend,
  poolBackend,
  proofNodeOfJob,
  type SimBackendOptions,
  type SystemBackendOptions,
  simBackend,
  simProofOf,
  systemBackend,
} from "./backends/index.ts";
export { type CalibrationRow, calibrate, formatCalibration, syntheticJob } from "./calibrate.ts";
export { BackendError } from "./errors.ts";
export { type PooledFetch, pooledFetch } from "./http.ts";
export { type WorkerMetrics, workerMetrics } from "./metrics.ts";
export { DEFAULT_GRACE_MS, DEFAULT_WAIT_MS, startWorkers } from "./pool.ts";
export type {
  BackendProof,
  Hardware,
  JobRef,
  ProofBackend,
  WorkerEvent,
  WorkerLogger,
  WorkerOptions,
  WorkerPool,
  WorkerStats,
} from "./types.ts";
