// The honk circuits: one Noir program per job type (circuits/<name>), compiled to ACIR and
// committed in artifacts/<name>.json with the verification key bb.js computes for it.
import { readFileSync } from "node:fs";
import { type JobType, packageDir } from "@prover-boost/core";
import type { Hex } from "viem";

export const circuitNames: Readonly<Record<JobType, string>> = {
  base: "prover_boost_base",
  merge: "prover_boost_merge",
  block_root: "prover_boost_block_root",
  single_tx_block_root: "prover_boost_single_tx_block_root",
  empty_block_root: "prover_boost_empty_block_root",
};

/** Where the Noir sources live: circuits/<name>/{Nargo.toml,src/main.nr}. */
export const circuitsDir = new URL(
  "circuits/",
  packageDir("@prover-boost/proofs", import.meta.url),
);
/** Where the compiled circuits are committed: artifacts/<name>.json. */
export const artifactsDir = new URL(
  "artifacts/",
  packageDir("@prover-boost/proofs", import.meta.url),
);

/** A committed compiled circuit. */
export interface CircuitArtifact {
  name: string;
  /** The Noir compiler that produced the bytecode. */
  noirVersion: string;
  /** Noir's ABI of main: parameter names, types and visibility. */
  abi: unknown;
  /** ACIR: base64 of the gzipped program, as noir_wasm emits it. */
  bytecode: string;
  /** bb.js UltraHonk verification key for verifier target noir-recursive-no-zk. */
  verificationKey: Hex;
}

const cache = new Map<string, CircuitArtifact>();

export function artifactPath(name: string): URL {
  return new URL(`${name}.json`, artifactsDir);
}

export function loadArtifact(type: JobType): CircuitArtifact {
  const name = circuitNames[type];
  let artifact = cache.get(name);
  if (!artifact) {
    artifact = JSON.parse(readFileSync(artifactPath(name), "utf8")) as CircuitArtifact;
    if (artifact.name !== name) throw new Error(`artifact ${name} names ${artifact.name}`);
    cache.set(name, artifact);
  }
  return artifact;
}
