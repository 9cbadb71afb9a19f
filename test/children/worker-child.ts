// A prover operator's worker pool in its own process, for crash tests: it signs in to the relay,
// proves with the SIMULATED backend (a timer per job, then the sim proof) and reports every
// worker event as one JSON line on stdout. The parent kills it (SIGKILL) mid-proof.
//
// Configuration (environment): RELAY_URL, OPERATOR_KEY (0x + 64 hex), WORKERS (default 2),
// CAPACITY (default 2), SIM_MS (proving time of every job type, default 300), NAME_PREFIX
// (default "child"), WAIT_MS (lease long poll, default 1000).
import type { JobType } from "@prover-boost/core";
import { simBackend, startWorkers } from "@prover-boost/worker";

const env = process.env;
const simMs = Number(env.SIM_MS ?? 300);
const durationsMs: Record<JobType, number> = {
  base: simMs,
  merge: simMs,
  block_root: simMs,
  single_tx_block_root: simMs,
  empty_block_root: simMs,
};

const pool = await startWorkers({
  relayUrl: env.RELAY_URL!,
  operatorKey: env.OPERATOR_KEY as `0x${string}`,
  workers: Number(env.WORKERS ?? 2),
  capacity: Number(env.CAPACITY ?? 2),
  waitMs: Number(env.WAIT_MS ?? 1000),
  namePrefix: env.NAME_PREFIX ?? "child",
  backend: simBackend({ durationsMs }),
  hardware: { cores: 2, memoryMb: 1024, gpus: 0 },
  onEvent: (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
});
process.stdout.write(`${JSON.stringify({ type: "started", pid: process.pid })}\n`);

process.on("SIGTERM", () => {
  void pool.stop({ graceMs: 0 }).then(() => process.exit(0));
});
