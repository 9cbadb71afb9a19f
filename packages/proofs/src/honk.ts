// The honk proof system: real UltraHonk proofs (bb.js, WASM, one thread) of the committed Noir
// circuits, on the committed setup prefix, verifier target noir-recursive-no-zk. Each node is
// proved and verified on its own; a parent is linked to its children through its public inputs,
// which must equal the children's accepted outputs. See docs/proofs.md.
import { gunzipSync } from "node:zlib";
import type { Barretenberg } from "@aztec/bb.js";
import { Noir } from "@noir-lang/noir_js";
import type { JobType } from "@prover-boost/core";
import type { Hex } from "viem";
import { acirBytes, newBarretenberg, proofSettings } from "./bb.ts";
import { type CircuitArtifact, circuitNames, loadArtifact } from "./circuits.ts";
import { fieldHex, nodeInputs, parseField } from "./fields.ts";
import type { NodeProof, ProofNode, ProofSystem } from "./types.ts";

interface LoadedCircuit {
  artifact: CircuitArtifact;
  noir: Noir;
  acir: Uint8Array;
  vk: Uint8Array;
  paramNames: string[];
}

const FIELD_BYTES = 32;

// Node's Buffer hex codec: proofs are 13 KB, and verification sits on the relay's hot path.
const toBytes = (hex: Hex): Uint8Array => new Uint8Array(Buffer.from(hex.slice(2), "hex"));
const toHex = (bytes: Uint8Array): Hex =>
  `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;

function loadCircuit(type: JobType): LoadedCircuit {
  const artifact = loadArtifact(type);
  const abi = artifact.abi as { parameters: { name: string }[] };
  return {
    artifact,
    // noir_js takes the compiled program as noir_wasm emits it (bytecode and abi).
    noir: new Noir({ bytecode: artifact.bytecode, abi: artifact.abi } as ConstructorParameters<
      typeof Noir
    >[0]),
    acir: acirBytes(artifact.bytecode),
    vk: toBytes(artifact.verificationKey),
    paramNames: abi.parameters.map((p) => p.name),
  };
}

/** Splits a proof into the 32-byte field elements bb.js takes; undefined if it cannot be one. */
function proofFields(proof: Hex): Uint8Array[] | undefined {
  if (typeof proof !== "string" || !/^0x(?:[0-9a-fA-F]{2})+$/.test(proof)) return undefined;
  const bytes = toBytes(proof);
  if (bytes.length === 0 || bytes.length % FIELD_BYTES !== 0) return undefined;
  const fields: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += FIELD_BYTES)
    fields.push(bytes.subarray(i, i + FIELD_BYTES));
  return fields;
}

/**
 * The verifier (or prover) itself could not run: bb.js did not start, the system was closed, or
 * (in a pool with a deadline) no verdict came in time. Not a verdict on a proof: `verify` throws
 * it rather than answering false, so the relay answers 503 and charges no one (an invalid proof
 * is penalized).
 */
export class ProofSystemUnavailable extends Error {
  override readonly name = "ProofSystemUnavailable";
}

export function honkProofSystem(
  /** Starts bb.js (a seam for tests; default: newBarretenberg). */
  open: () => Promise<Barretenberg> = newBarretenberg,
): ProofSystem {
  const circuits = new Map<JobType, LoadedCircuit>();
  let api: Promise<Barretenberg> | undefined;
  // One bb.js instance runs one call at a time: calls are chained.
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  const circuit = (type: JobType): LoadedCircuit => {
    let c = circuits.get(type);
    if (!c) {
      c = loadCircuit(type);
      circuits.set(type, c);
    }
    return c;
  };
  // bb.js, started on first use; a start that failed is tried again by the next call.
  const instance = (): Promise<Barretenberg> => {
    if (!api) {
      const started = open();
      api = started;
      started.catch(() => {
        if (api === started) api = undefined;
      });
    }
    return api;
  };
  // The instance is taken when the call is queued, so a close() meanwhile lets it finish first.
  const withApi = <T>(fn: (bb: Barretenberg) => Promise<T>): Promise<T> => {
    if (closed)
      return Promise.reject(new ProofSystemUnavailable("the honk proof system is closed"));
    const bbOf = instance();
    const run = queue.then(async () => {
      const bb = await bbOf.catch((err: unknown) => {
        throw new ProofSystemUnavailable(`bb.js did not start: ${String(err)}`, { cause: err });
      });
      return fn(bb);
    });
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    name: "honk",
    async prove(node: ProofNode, opts: { signal?: AbortSignal } = {}): Promise<NodeProof> {
      opts.signal?.throwIfAborted();
      const c = circuit(node.type);
      const inputs = nodeInputs(node);
      const inputMap = Object.fromEntries(c.paramNames.map((name, i) => [name, inputs[i]!]));
      const { witness } = await c.noir.execute(inputMap);
      const { proof, publicInputs } = await withApi((bb) =>
        bb.circuitProve({
          circuit: { name: c.artifact.name, bytecode: c.acir, verificationKey: c.vk },
          witness: new Uint8Array(gunzipSync(witness)),
          settings: proofSettings,
        }),
      );
      const flat = new Uint8Array(proof.length * FIELD_BYTES);
      proof.forEach((field, i) => {
        flat.set(field, i * FIELD_BYTES);
      });
      return { proof: toHex(flat), publicInputs: publicInputs.map(toHex) };
    },
    async verify(node: ProofNode, proof: NodeProof): Promise<boolean> {
      let expected: Hex[];
      try {
        expected = nodeInputs(node);
      } catch {
        return false;
      }
      const given = proof.publicInputs;
      if (!Array.isArray(given) || given.length !== expected.length + 1) return false;
      for (const [i, want] of expected.entries()) {
        const got = parseField(given[i] ?? "");
        if (got === undefined || fieldHex(got) !== want) return false;
      }
      if (parseField(given[expected.length] ?? "") === undefined) return false;
      const fields = proofFields(proof.proof);
      if (!fields) return false;
      const c = circuit(node.type);
      try {
        const { verified } = await withApi((bb) =>
          bb.circuitVerify({
            verificationKey: c.vk,
            publicInputs: given.map(toBytes),
            proof: fields,
            settings: proofSettings,
          }),
        );
        return verified;
      } catch (err) {
        // The verifier could not run: no verdict on the proof.
        if (err instanceof ProofSystemUnavailable) throw err;
        // bb.js refuses a proof of the wrong shape by throwing: it does not verify.
        return false;
      }
    },
    outputOf(node: ProofNode, proof: NodeProof): Hex {
      const out = proof.publicInputs[nodeInputs(node).length];
      const value = out === undefined ? undefined : parseField(out);
      if (value === undefined) throw new TypeError("the proof carries no output field");
      return fieldHex(value);
    },
    circuitOf(type: JobType): string {
      return circuitNames[type];
    },
    async verificationKey(type: JobType): Promise<Hex> {
      return loadArtifact(type).verificationKey;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      const pending = api;
      api = undefined;
      await queue;
      const bb = await pending?.catch(() => undefined);
      await bb?.destroy();
    },
  };
}
