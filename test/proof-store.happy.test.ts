// The proof store and the block transactions on both database backends: bytes go in and come
// back exactly (bytea through SQL's hex decode/encode), a node's first verified proof is kept,
// and public inputs that are not 32-byte fields are refused before anything is written.
import {
  blockHasTxData,
  blockTxData,
  blockTxDataMany,
  createBlock,
  insertBlockTxs,
  insertProofJobs,
  postgresProofStore,
} from "@prover-boost/db";
import type { Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DATABASE_BACKENDS,
  openScratchDatabase,
  type ScratchDatabase,
} from "./support/databases.ts";

const field = (b: string) => `0x${b.repeat(32)}` as Hex;

for (const backend of DATABASE_BACKENDS) {
  describe(`proof store on ${backend}`, () => {
    let scratch: ScratchDatabase;
    beforeAll(async () => {
      scratch = await openScratchDatabase(backend, "proofstore");
      await scratch.db.prisma.auction.create({
        data: {
          blockNumber: 5,
          slot: 1,
          txCount: 2,
          txsHash: "0x",
          txs: [],
          blockReward: "1",
          minBond: "1",
          maxFeeBps: 1,
          biddingClosesAt: 1n,
          proofDeadline: 2n,
          sequencer: "0x",
          signature: "0x",
          createdAt: 1n,
          proofSystem: "honk",
        },
      });
    });
    afterAll(async () => scratch?.close());

    it("keeps a node's first proof, byte for byte", async () => {
      const store = postgresProofStore(scratch.db.prisma);
      const first = {
        jobId: "5-0-0",
        blockNumber: 5,
        proofSystem: "honk",
        circuit: "prover_boost_block_root",
        proof: `0x00ff${"7a".repeat(500)}01` as Hex,
        publicInputs: [field("01"), field("fe")],
        output: field("fe"),
      };
      await store.put(first, 10);
      await store.put({ ...first, proof: "0x1234", publicInputs: [field("02")] }, 11);
      expect(await store.get("5-0-0")).toEqual(first);
      expect(await store.get("5-1-0")).toBeNull();
      await expect(
        store.put({ ...first, jobId: "5-1-0", publicInputs: ["0x12" as Hex] }, 12),
      ).rejects.toThrow(/32-byte field/);
      expect(await store.get("5-1-0")).toBeNull();
    });

    it("writes a tree's ProofJob rows in one statement, and a repeat adds nothing", async () => {
      await createBlock(scratch.db.prisma, 5, 1);
      const rows = [
        {
          id: "5-0-0",
          blockNumber: 5,
          type: "block_root",
          level: 0,
          index: 0,
          parentId: null,
          childIds: ["5-1-0", "5-1-1"],
          inputs: [],
        },
        {
          id: "5-1-0",
          blockNumber: 5,
          type: "base",
          level: 1,
          index: 0,
          parentId: "5-0-0",
          childIds: [],
          inputs: [field("aa")],
        },
      ];
      expect(await insertProofJobs(scratch.db.prisma, rows)).toBe(2);
      expect(await insertProofJobs(scratch.db.prisma, rows)).toBe(0);
      const stored = await scratch.db.prisma.proofJob.findMany({ orderBy: { id: "asc" } });
      expect(
        stored.map((r) => [r.id, r.type, r.level, r.parentId, r.childIds, r.inputs, r.status]),
      ).toEqual([
        ["5-0-0", "block_root", 0, null, ["5-1-0", "5-1-1"], [], "queued"],
        ["5-1-0", "base", 1, "5-0-0", [], [field("aa")], "queued"],
      ]);
    });

    it("stores a block's transactions and finds each one's data by hash", async () => {
      const txs = [
        { hash: field("AA"), data: "0x0102" as Hex },
        { hash: field("bb"), data: "0x" as Hex },
      ];
      await insertBlockTxs(scratch.db.prisma, 5, txs);
      expect(await blockTxData(scratch.db.prisma, 5, field("aa"))).toBe("0x0102");
      expect(await blockTxData(scratch.db.prisma, 5, field("bb"))).toBe("0x");
      expect(await blockTxData(scratch.db.prisma, 5, field("cc"))).toBeNull();
      expect(await blockTxData(scratch.db.prisma, 6, field("aa"))).toBeNull();
      // Several at once, in the order asked, across blocks, with nulls where none was uploaded.
      expect(
        await blockTxDataMany(scratch.db.prisma, [
          { blockNumber: 5, hash: field("bb") },
          { blockNumber: 6, hash: field("aa") },
          { blockNumber: 5, hash: field("AA") },
          { blockNumber: 5, hash: field("cc") },
        ]),
      ).toEqual(["0x", null, "0x0102", null]);
      expect(await blockHasTxData(scratch.db.prisma, 5)).toBe(true);
      expect(await blockHasTxData(scratch.db.prisma, 6)).toBe(false);
      const rows = await scratch.db.prisma.blockTx.findMany({ orderBy: { position: "asc" } });
      expect(rows.map((r) => [r.position, r.hash])).toEqual([
        [0, field("aa")],
        [1, field("bb")],
      ]);
    });
  });
}
