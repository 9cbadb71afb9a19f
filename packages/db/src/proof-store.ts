// Where accepted proofs live: stored once, in Postgres (bytea), behind a small interface so
// that another store (object storage) can take its place. The relay puts a proof once it
// verified; anyone reads it back to verify that node of the block independently.
import type { Tx } from "./ledger.ts";

type Hex = `0x${string}`;

export interface StoredProof {
  jobId: string;
  blockNumber: number;
  proofSystem: string;
  circuit: string;
  proof: Hex;
  /** 32-byte fields */
  publicInputs: Hex[];
  /** The public output its parent consumes (32 bytes). */
  output: Hex;
}

export interface ProofStore {
  /** Stores a verified proof; a second put for the same job replaces the first. */
  put(proof: StoredProof, nowMs: number): Promise<void>;
  get(jobId: string): Promise<StoredProof | null>;
}

const toBytes = (hex: Hex): Uint8Array<ArrayBuffer> =>
  new Uint8Array(Buffer.from(hex.slice(2), "hex"));
const toHex = (bytes: Uint8Array): Hex => `0x${Buffer.from(bytes).toString("hex")}`;

/** Splits concatenated 32-byte fields. */
function fieldsOf(bytes: Uint8Array): Hex[] {
  const out: Hex[] = [];
  for (let i = 0; i < bytes.length; i += 32) out.push(toHex(bytes.subarray(i, i + 32)));
  return out;
}

function concatFields(fields: readonly Hex[]): Uint8Array<ArrayBuffer> {
  for (const f of fields) {
    if (!/^0x[0-9a-fA-F]{64}$/.test(f)) throw new RangeError(`not a 32-byte field: ${f}`);
  }
  return toBytes(`0x${fields.map((f) => f.slice(2)).join("")}`);
}

/** The Postgres store: table ProofArtifact, proof and public inputs as bytea. */
export function postgresProofStore(db: Tx): ProofStore {
  return {
    async put(p, nowMs) {
      const row = {
        blockNumber: p.blockNumber,
        proofSystem: p.proofSystem,
        circuit: p.circuit,
        proof: toBytes(p.proof),
        publicInputs: concatFields(p.publicInputs),
        output: p.output.toLowerCase(),
        createdAt: BigInt(nowMs),
      };
      await db.proofArtifact.upsert({
        where: { jobId: p.jobId },
        create: { jobId: p.jobId, ...row },
        update: row,
      });
    },
    async get(jobId) {
      const r = await db.proofArtifact.findUnique({ where: { jobId } });
      if (!r) return null;
      return {
        jobId: r.jobId,
        blockNumber: r.blockNumber,
        proofSystem: r.proofSystem,
        circuit: r.circuit,
        proof: toHex(r.proof),
        publicInputs: fieldsOf(r.publicInputs),
        output: r.output as Hex,
      };
    },
  };
}
