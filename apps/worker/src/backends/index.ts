export { type ExecBackendOptions, execBackend } from "./exec.ts";
export { defaultSimDurationsMs, type SimBackendOptions, simBackend, simProofOf } from "./sim.ts";
export { poolBackend, proofNodeOfJob, type SystemBackendOptions, systemBackend } from "./system.ts";
