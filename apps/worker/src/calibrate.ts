// Calibration: prove a few synthetic jobs of each type with a backend and time them, so an
// operator can see what a machine (or an exec prover) does per job type before bidding.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { JobType } from "@prover-boost/core";
import type { LeasedJob } from "@prover-boost/sdk";
import type { Hex } from "viem";
import type { ProofBackend } from "./types.ts";

export interface CalibrationRow {
  type: JobType;
  runs: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
}

/** 32 random bytes below 2^252, so they are also a field element of a real proof system. */
const randomHex32 = (): Hex => {
  const b = randomBytes(32);
  b[0] = b[0]! & 0x0f;
  return `0x${b.toString("hex")}`;
};

/** Children a node of each type has; base jobs carry one input (a tx hash) instead. */
const childCount: Record<JobType, number> = {
  base: 0,
  merge: 2,
  block_root: 2,
  single_tx_block_root: 1,
  empty_block_root: 0,
};

/** A made-up job of `type` with random 32-byte inputs / children proofs. */
export function syntheticJob(
  type: JobType,
  n: number,
  proofSystem: LeasedJob["proofSystem"] = "sim",
): LeasedJob {
  const isRoot = type !== "base" && type !== "merge";
  return {
    id: `calibrate-${type}-${n}`,
    type,
    blockNumber: 1,
    level: isRoot ? 0 : 1,
    index: isRoot ? 0 : n,
    inputs: type === "base" ? [randomHex32()] : [],
    proofSystem,
    children: Array.from({ length: childCount[type] }, (_, i) => {
      const output = randomHex32();
      return { id: `calibrate-${type}-${n}-child-${i}`, output, proof: output };
    }),
    leaseExpiresAt: Date.now() + 3_600_000,
  };
}

/** Proves `runs` synthetic jobs of each type, one at a time. Backend errors propagate. */
export async function calibrate(
  backend: ProofBackend,
  opts: {
    jobTypes: readonly JobType[];
    runs?: number;
    signal?: AbortSignal;
    /** The proof system the synthetic jobs claim (the backend's own); default sim. */
    proofSystem?: LeasedJob["proofSystem"];
  },
): Promise<CalibrationRow[]> {
  const runs = opts.runs ?? 5;
  const signal = opts.signal ?? new AbortController().signal;
  const rows: CalibrationRow[] = [];
  for (const type of opts.jobTypes) {
    const times: number[] = [];
    for (let n = 0; n < runs; n++) {
      const job = syntheticJob(type, n, opts.proofSystem);
      const t0 = performance.now();
      await backend.prove(job, signal);
      times.push(performance.now() - t0);
    }
    rows.push({
      type,
      runs,
      meanMs: times.reduce((a, b) => a + b, 0) / runs,
      minMs: Math.min(...times),
      maxMs: Math.max(...times),
    });
  }
  return rows;
}

/** A plain-text table: one header line and one line per job type. */
export function formatCalibration(rows: CalibrationRow[], backendName: string): string {
  const ms = (v: number) => v.toFixed(1).padStart(10);
  const lines = [
    `calibration with backend ${backendName}`,
    `${"job type".padEnd(22)}${"runs".padStart(6)}${"mean ms".padStart(10)}${"min ms".padStart(10)}${"max ms".padStart(10)}`,
    ...rows.map(
      (r) =>
        `${r.type.padEnd(22)}${String(r.runs).padStart(6)}${ms(r.meanMs)}${ms(r.minMs)}${ms(r.maxMs)}`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}
