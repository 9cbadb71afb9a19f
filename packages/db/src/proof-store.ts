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
  /**
   * Stores a verified proof of a node, once: the first put of a job is kept and later ones are
   * no-ops (any verified proof of a node proves the same public inputs and output).
   */
  put(proof: StoredProof, nowMs: number): Promise<void>;
  get(jobId: string): Promise<StoredProof | null>;
}

const hexOf = (text: string): Hex => `0x${text}`;

/** Splits concatenated 32-byte fields (hex without 0x). */
function fieldsOf(hex: string): Hex[] {
  const out: Hex[] = [];
  for (let i = 0; i < hex.length; i += 64) out.push(hexOf(hex.slice(i, i + 64)));
  return out;
}

function concatFields(fields: readonly Hex[]): string {
  for (const f of fields) {
    if (!/^0x[0-9a-fA-F]{64}$/.test(f)) throw new RangeError(`not a 32-byte field: ${f}`);
  }
  return fields.map((f) => f.slice(2).toLowerCase()).join("");
}

function bareHex(hex: Hex): string {
  if (!/^0x([0-9a-fA-F]{2})*$/.test(hex)) throw new RangeError("not whole bytes of hex");
  return hex.slice(2).toLowerCase();
}

/**
 * The Postgres store: table ProofArtifact, proof and public inputs as bytea. Bytes go through
 * SQL's decode/encode (hex), which Postgres and PGlite's driver adapter treat alike.
 */
export function postgresProofStore(db: Tx): ProofStore {
  return {
    async put(p, nowMs) {
      await db.$executeRaw`
        INSERT INTO "ProofArtifact" ("jobId", "blockNumber", "proofSystem", "circuit", "proof",
          "publicInputs", "output", "createdAt")
        VALUES (${p.jobId}, ${p.blockNumber}::integer, ${p.proofSystem}, ${p.circuit},
          decode(${bareHex(p.proof)}, 'hex'), decode(${concatFields(p.publicInputs)}, 'hex'),
          ${p.output.toLowerCase()}, ${BigInt(nowMs)}::bigint)
        ON CONFLICT ("jobId") DO NOTHING`;
    },
    async get(jobId) {
      const rows = await db.$queryRaw<
        {
          jobId: string;
          blockNumber: number;
          proofSystem: string;
          circuit: string;
          proof: string;
          publicInputs: string;
          output: string;
        }[]
      >`
        SELECT "jobId", "blockNumber", "proofSystem", "circuit", encode("proof", 'hex') AS proof,
          encode("publicInputs", 'hex') AS "publicInputs", "output"
        FROM "ProofArtifact" WHERE "jobId" = ${jobId}`;
      const r = rows[0];
      if (!r) return null;
      return {
        jobId: r.jobId,
        blockNumber: Number(r.blockNumber),
        proofSystem: r.proofSystem,
        circuit: r.circuit,
        proof: hexOf(r.proof),
        publicInputs: fieldsOf(r.publicInputs),
        output: r.output as Hex,
      };
    },
  };
}

/**
 * Inserts a block's transactions' data, in block order (bytea through SQL's hex decode, as
 * above); a Prisma promise, so it can join a batch transaction.
 */
export function insertBlockTxs(
  db: Tx,
  blockNumber: number,
  txs: readonly { hash: string; data: Hex }[],
) {
  return db.$executeRaw`
    INSERT INTO "BlockTx" ("blockNumber", "position", "hash", "data")
    SELECT ${blockNumber}::integer, t.ord - 1, t.hash, decode(t.data, 'hex')
    FROM unnest(${txs.map((t) => t.hash.toLowerCase())}::text[],
      ${txs.map((t) => bareHex(t.data))}::text[]) WITH ORDINALITY AS t(hash, data, ord)`;
}

/** A transaction's data by its hash within a block, or null when none was uploaded. */
export async function blockTxData(db: Tx, blockNumber: number, hash: string): Promise<Hex | null> {
  const rows = await db.$queryRaw<{ data: string }[]>`
    SELECT encode("data", 'hex') AS data FROM "BlockTx"
    WHERE "blockNumber" = ${blockNumber}::integer AND "hash" = ${hash.toLowerCase()}
    LIMIT 1`;
  return rows[0] ? hexOf(rows[0].data) : null;
}

/**
 * Several transactions' data in one query, by (block, hash): one answer per asked pair, in order
 * (null where none was uploaded).
 */
export async function blockTxDataMany(
  db: Tx,
  asked: readonly { blockNumber: number; hash: string }[],
): Promise<(Hex | null)[]> {
  if (asked.length === 0) return [];
  const rows = await db.$queryRaw<{ blockNumber: number; hash: string; data: string }[]>`
    SELECT t."blockNumber", t."hash", encode(t."data", 'hex') AS data FROM "BlockTx" t
    JOIN unnest(${asked.map((a) => a.blockNumber)}::integer[], ${asked.map((a) => a.hash.toLowerCase())}::text[])
      AS q(b, h) ON t."blockNumber" = q.b AND t."hash" = q.h`;
  const found = new Map(rows.map((r) => [`${r.blockNumber} ${r.hash}`, hexOf(r.data)]));
  return asked.map((a) => found.get(`${a.blockNumber} ${a.hash.toLowerCase()}`) ?? null);
}

/** Whether a block has any transaction data uploaded (written with its auction, never after). */
export async function blockHasTxData(db: Tx, blockNumber: number): Promise<boolean> {
  const rows = await db.$queryRaw<{ found: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM "BlockTx" WHERE "blockNumber" = ${blockNumber}::integer) AS found`;
  return rows[0]?.found === true;
}

/** A transaction's hash and data by its position in a block, or null when none was uploaded. */
export async function blockTxAt(
  db: Tx,
  blockNumber: number,
  position: number,
): Promise<{ hash: Hex; data: Hex } | null> {
  const rows = await db.$queryRaw<{ hash: string; data: string }[]>`
    SELECT "hash", encode("data", 'hex') AS data FROM "BlockTx"
    WHERE "blockNumber" = ${blockNumber}::integer AND "position" = ${position}::integer`;
  const r = rows[0];
  return r ? { hash: r.hash as Hex, data: hexOf(r.data) } : null;
}
