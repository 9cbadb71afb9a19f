#!/usr/bin/env node
// prover-boost: the operator CLI (worker, bid, cancel, status). Runs the build
// (apps/worker/dist/prover-boost.js, from `npm run build`) when there is one; without a build it
// runs the TypeScript sources through tsx, so the CLI works right after `npm ci`.
// PB_RUN_SOURCES=1 runs the sources even when there is a build (a build older than the sources
// would run stale code).
import { existsSync } from "node:fs";

const built = new URL("../apps/worker/dist/prover-boost.js", import.meta.url);
if (process.env.PB_RUN_SOURCES !== "1" && existsSync(built)) {
  await import(built.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../apps/worker/src/operator/main.ts");
}
