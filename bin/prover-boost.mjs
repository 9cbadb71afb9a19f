#!/usr/bin/env node
// prover-boost: the operator CLI (worker, bid, cancel, status). Runs the TypeScript sources
// through tsx.
import { register } from "tsx/esm/api";

register();
await import("../apps/worker/src/operator/main.ts");
