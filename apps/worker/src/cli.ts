#!/usr/bin/env -S npx tsx
// prover-boost-worker: the prover worker agent operators run (the same agent as
// `prover-boost worker`; cli-main.ts has both).
import { runWorkerCli } from "./cli-main.ts";

await runWorkerCli(process.argv.slice(2), "prover-boost-worker");
