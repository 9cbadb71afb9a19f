// The one writer of block stages (packages/db blocks.ts) on a real Postgres and the embedded
// PGlite: a block is created in auction_open, a move applies once (compare-and-set), a move from
// a stage the block is not in changes nothing, and a move the lifecycle forbids is a bug.
import { InvariantError, STAGE, type Stage } from "@prover-boost/core";
import { createBlock, type Database, moveStage, recordPenalty } from "@prover-boost/db";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  DATABASE_BACKENDS,
  openScratchDatabase,
  type ScratchDatabase,
} from "./support/databases.ts";

const op = "0x00000000000000000000000000000000000000aa";

async function seedAuction(db: Database, blockNumber: number) {
  await db.prisma.auction.create({
    data: {
      blockNumber,
      slot: 1,
      txCount: 1,
      txsHash: "0x",
      txs: [],
      blockReward: "1",
      minBond: "1",
      maxFeeBps: 1,
      biddingClosesAt: 1n,
      proofDeadline: 2n,
      sequencer: op,
      signature: "0x",
      createdAt: 1n,
    },
  });
}

describe.each(DATABASE_BACKENDS)("block stages on %s", (backend) => {
  let scratch: ScratchDatabase | undefined;
  let db: Database;

  beforeAll(async () => {
    scratch = await openScratchDatabase(backend, "stages");
    db = scratch.db;
  });
  afterAll(async () => {
    await scratch?.close();
  });
  beforeEach(async () => {
    await db.prisma.penalty.deleteMany();
    await db.prisma.block.deleteMany();
    await db.prisma.auction.deleteMany();
    await seedAuction(db, 5);
    await createBlock(db.prisma, 5, 100);
  });

  const block = () => db.prisma.block.findUniqueOrThrow({ where: { number: 5 } });
  const move = (from: Stage, to: Stage, now: number) =>
    db.prisma.$transaction((tx) => moveStage(tx, 5, from, to, now));

  it("creates a block in auction_open with its time", async () => {
    expect(await block()).toMatchObject({
      stage: STAGE.auction_open,
      stages: { auction_open: 100 },
      updatedAt: 100n,
    });
  });

  it("moves once along the lifecycle and keeps every stage's time", async () => {
    expect(
      await db.prisma.$transaction((tx) =>
        moveStage(tx, 5, STAGE.auction_open, STAGE.committed, 200, { winner: op, feeBps: 7 }),
      ),
    ).toBe(true);
    // The same move again (a retried tick, a second aggregator) finds the block moved on.
    expect(await move(STAGE.auction_open, STAGE.committed, 250)).toBe(false);
    expect(await move(STAGE.committed, STAGE.proving, 300)).toBe(true);
    expect(await block()).toMatchObject({
      stage: STAGE.proving,
      stages: { auction_open: 100, committed: 200, proving: 300 },
      updatedAt: 300n,
      winner: op,
      feeBps: 7,
    });
  });

  it("changes nothing when the block is not in the `from` stage, or does not exist", async () => {
    expect(await move(STAGE.committed, STAGE.proving, 300)).toBe(false);
    expect(
      await db.prisma.$transaction((tx) =>
        moveStage(tx, 99, STAGE.auction_open, STAGE.committed, 300),
      ),
    ).toBe(false);
    expect(await block()).toMatchObject({ stage: STAGE.auction_open, updatedAt: 100n });
  });

  it("refuses a move the lifecycle does not allow as an internal error, writing nothing", async () => {
    await expect(move(STAGE.auction_open, STAGE.paid, 300)).rejects.toBeInstanceOf(InvariantError);
    expect(await block()).toMatchObject({ stage: STAGE.auction_open, updatedAt: 100n });
  });

  it("records a penalty through the one writer", async () => {
    await recordPenalty(db.prisma, {
      id: "5:slash",
      kind: "slash",
      blockNumber: 5,
      operator: op,
      amount: 10n ** 30n,
      nowMs: 400,
    });
    const row = await db.prisma.penalty.findUniqueOrThrow({ where: { id: "5:slash" } });
    expect(row).toMatchObject({ kind: "slash", jobId: null, workerId: null, createdAt: 400n });
    expect(row.amount.toFixed()).toBe((10n ** 30n).toString());
  });
});
