// Verifies served honk proofs the way anyone outside the market would: bare bb.js
// (UltraHonkVerifierBackend) with the public setup points, and nothing from the relay but what
// GET /v1/blocks/{n}/proofs/{jobId} served (proof, public inputs, verification key). Run as its
// own process: stdin a JSON array of served proofs, stdout a JSON array of verdicts.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { UltraHonkVerifierBackend } from "@aztec/bb.js";
import { newBarretenberg, verifierTarget } from "@prover-boost/proofs";
import { hexToBytes } from "viem";

export interface ServedProof {
  proof: `0x${string}`;
  publicInputs: `0x${string}`[];
  verificationKey: `0x${string}`;
}

/** Runs this file in a child process over `proofs`; one verdict each. */
export function verifyIndependently(proofs: readonly ServedProof[]): boolean[] {
  const res = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)], {
    input: JSON.stringify(proofs),
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`the verifier process failed: ${res.stderr}`);
  return JSON.parse(res.stdout.trim().split("\n").at(-1)!) as boolean[];
}

async function main() {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const proofs = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ServedProof[];
  const api = await newBarretenberg();
  const verifier = new UltraHonkVerifierBackend(api);
  const out: boolean[] = [];
  try {
    for (const p of proofs) {
      out.push(
        await verifier
          .verifyProof(
            {
              proof: hexToBytes(p.proof),
              publicInputs: p.publicInputs,
              verificationKey: hexToBytes(p.verificationKey),
            },
            { verifierTarget },
          )
          .catch(() => false),
      );
    }
  } finally {
    await api.destroy();
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
