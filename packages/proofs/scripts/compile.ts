// npm run proofs:compile: rebuilds artifacts/<name>.json for every circuit: the ACIR from
// noir_wasm and the verification key bb.js computes for it on the committed setup.
import { writeFileSync } from "node:fs";
import { jobTypes } from "@prover-boost/core";
import { bytesToHex } from "viem";
import { acirBytes, maxGates, newBarretenberg, proofSettings } from "../src/bb.ts";
import { artifactPath, type CircuitArtifact } from "../src/circuits.ts";
import { compileCircuit } from "../src/compile.ts";

const api = await newBarretenberg();
try {
  for (const type of jobTypes) {
    const compiled = await compileCircuit(type);
    const bytecode = acirBytes(compiled.bytecode);
    const stats = await api.circuitStats({
      circuit: { name: compiled.name, bytecode, verificationKey: new Uint8Array(0) },
      includeGatesPerOpcode: false,
      settings: proofSettings,
    });
    if (stats.numGatesDyadic > maxGates()) {
      throw new Error(
        `${compiled.name} needs ${stats.numGatesDyadic} rows; the setup allows ${maxGates()}`,
      );
    }
    const vk = await api.circuitComputeVk({
      circuit: { name: compiled.name, bytecode },
      settings: proofSettings,
    });
    const artifact: CircuitArtifact = { ...compiled, verificationKey: bytesToHex(vk.bytes) };
    writeFileSync(artifactPath(compiled.name), `${JSON.stringify(artifact, null, 2)}\n`);
    console.log(
      `${compiled.name}: ${stats.numGates} gates (${stats.numGatesDyadic} dyadic), vk ${vk.bytes.length} bytes`,
    );
  }
} finally {
  await api.destroy();
}
