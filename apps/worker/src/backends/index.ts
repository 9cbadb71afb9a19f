export { type ExecBackendOptions, execBackend } from "./exec.ts";
export { defaultSimDurationsMs, type SimBackendOptions, simBackend, simProofOf } from "./sim.ts";
