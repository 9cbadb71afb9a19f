// The devnet end to end on real Redis, on PGlite and on Postgres: blocks get paid with payouts
// summing exactly to the reward, and a block's root proof depends only on the seed's
// transactions, not on how many workers proved it.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type DevnetBlockReport, runDevnet } from "./devnet.ts";

const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const databaseUrl = process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/test";
const fast = {
  base: 20,
  merge: 10,
  block_root: 30,
  single_tx_block_root: 30,
  empty_block_root: 10,
};
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

async function run(workers: number, backend: "pglite" | "postgres"): Promise<DevnetBlockReport[]> {
  const env: NodeJS.ProcessEnv = { REDIS_URL: redisUrl, LOG_LEVEL: "silent" };
  let schema: string | undefined;
  if (backend === "pglite") {
    const dir = await mkdtemp(path.join(tmpdir(), "pb-devnet-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    env.DATA_DIR = dir;
  } else {
    schema = `devnet_t_${randomBytes(4).toString("hex")}`;
    env.DATABASE_URL = databaseUrl;
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    });
  }
  const { blocks } = await runDevnet({
    blocks: 2,
    txs: 6,
    operators: 2,
    workers,
    seed: "devnet-test",
    port: 0,
    blockTimeMs: 700,
    biddingMs: 1500,
    deadlineMs: 60_000,
    simDurationsMs: fast,
    env,
    ...(schema ? { schema } : {}),
  });
  return blocks;
}

function checkPaid(blocks: DevnetBlockReport[]) {
  expect(blocks.map((b) => b.stage)).toEqual(["paid", "paid"]);
  for (const b of blocks) {
    expect(b.jobs).toBe(11);
    expect(b.rootProof).toMatch(/^0x[0-9a-f]{64}$/);
    expect(b.payouts.reduce((s, p) => s + BigInt(p.amount), 0n)).toBe(BigInt(b.blockReward));
    const provers = b.payouts.filter((p) => p.role === "prover").map((p) => p.recipient);
    // A won block is proven by its winner's workers only; an unclaimed one (no bid in time on
    // a slow machine) by anyone, and then paid by weighted work.
    if (b.winner) expect(provers).toEqual([b.winner]);
    else expect(provers.length).toBeGreaterThan(0);
  }
}

describe("devnet", () => {
  it("gives the same blocks with 1 or 3 workers per operator (PGlite), and on Postgres", async () => {
    const one = await run(1, "pglite");
    const three = await run(3, "pglite");
    const onPostgres = await run(2, "postgres");
    checkPaid(one);
    checkPaid(three);
    checkPaid(onPostgres);
    expect(three.map((b) => b.rootProof)).toEqual(one.map((b) => b.rootProof));
    expect(onPostgres.map((b) => b.rootProof)).toEqual(one.map((b) => b.rootProof));
    expect(three.map((b) => b.blockReward)).toEqual(one.map((b) => b.blockReward));
    expect(new Set(one.map((b) => b.rootProof)).size).toBe(2);
  }, 180_000);
});
