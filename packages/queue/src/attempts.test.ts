// The attempt and provenance books on a real Redis: counting, barring, undoing a refused fail,
// and removal of a block's keys when the block is retired.
import { randomBytes } from "node:crypto";
import { type ConnectionOptions, Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AttemptBook, lesseeKey } from "./attempts.ts";
import type { ProofJobData } from "./catalog.ts";
import { blockQueueName, ProofFabric } from "./fabric.ts";
import { headPriority, peekHeads } from "./picking.ts";
import { redisOptions } from "./redis.ts";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
let fabric: ProofFabric;
let book: AttemptBook;

beforeAll(async () => {
  fabric = await ProofFabric.open({
    redisUrl: REDIS_URL,
    prefix: `pbtest-${randomBytes(5).toString("hex")}`,
    leaseMs: 1000,
    checkStalled: false,
    subscribe: false,
  });
  book = fabric.attempts;
});
afterAll(async () => {
  await fabric.obliterate();
  await fabric.close();
});

const w1 = lesseeKey("0xAbC0000000000000000000000000000000000001", "w-1");
const w2 = lesseeKey("0xabc0000000000000000000000000000000000001", "w-2");

describe("AttemptBook", () => {
  it("keys a worker by lower-cased operator and worker id", () => {
    expect(w1).toBe("0xabc0000000000000000000000000000000000001/w-1");
  });

  it("bars a worker from a job at the bound of retryable fails, per worker", async () => {
    expect(await book.recordRetryable(1, "1-2-0", w1, 3)).toMatchObject({
      fails: 1,
      barred: false,
    });
    expect(await book.recordRetryable(1, "1-2-0", w1, 3)).toMatchObject({
      fails: 2,
      barred: false,
    });
    expect(await book.barred(1, w1, Date.now())).toEqual(new Set());
    expect(await book.recordRetryable(1, "1-2-0", w1, 3)).toMatchObject({
      fails: 3,
      barred: true,
      newlyBarred: true,
    });
    expect(await book.barred(1, w1, Date.now())).toEqual(new Set(["1-2-0"]));
    // Another worker, another job, another block: untouched.
    expect(await book.barred(1, w2, Date.now())).toEqual(new Set());
    expect(await book.fails(1, "1-2-1", w1)).toBe(0);
    expect(await book.barred(2, w1, Date.now())).toEqual(new Set());
    // A fail past the bound stays barred, listed once.
    expect(await book.recordRetryable(1, "1-2-0", w1, 3)).toMatchObject({
      fails: 4,
      barred: true,
      newlyBarred: false,
    });
    expect(await book.barred(1, w1, Date.now())).toEqual(new Set(["1-2-0"]));
  });

  it("bars at once on a give-up, without counting a retryable fail", async () => {
    const rec = await book.recordGiveUp(1, "1-2-3", w2);
    expect(rec).toMatchObject({ fails: 0, barred: true, counted: false, newlyBarred: true });
    expect(await book.barred(1, w2, Date.now())).toEqual(new Set(["1-2-3"]));
    expect(await book.fails(1, "1-2-3", w2)).toBe(0);
  });

  it("undoes exactly what a refused fail recorded", async () => {
    await book.recordRetryable(3, "3-1-0", w1, 2);
    const second = await book.recordRetryable(3, "3-1-0", w1, 2);
    expect(second.barred).toBe(true);
    await book.recordGiveUp(3, "3-1-1", w1);
    await book.undo(3, "3-1-0", w1, second);
    expect(await book.fails(3, "3-1-0", w1)).toBe(1);
    expect(await book.barred(3, w1, Date.now())).toEqual(new Set(["3-1-1"]));
    const giveUp = await book.recordGiveUp(3, "3-1-2", w1);
    await book.undo(3, "3-1-2", w1, giveUp);
    expect(await book.barred(3, w1, Date.now())).toEqual(new Set(["3-1-1"]));
  });

  it("undoes a record once, however often the undo is sent (its reply lost)", async () => {
    const first = await book.recordRetryable(4, "4-1-0", w1, 2, { operator: w2, maxOperator: 9 });
    const second = await book.recordRetryable(4, "4-1-0", w1, 2, { operator: w2, maxOperator: 9 });
    expect(second).toMatchObject({ fails: 2, barred: true, newlyBarred: true });
    for (let i = 0; i < 3; i++) await book.undo(4, "4-1-0", w1, second);
    expect(await book.fails(4, "4-1-0", w1)).toBe(1);
    expect(await book.jobFails(4, "4-1-0")).toBe(1);
    expect(await book.barred(4, w1, Date.now())).toEqual(new Set());
    // Counted again past the bound (the fail sent again), it bars again; the old undo, sent once
    // more, takes nothing of the new record.
    await book.recordRetryable(4, "4-1-0", w1, 2, { operator: w2, maxOperator: 9 });
    await book.undo(4, "4-1-0", w1, second);
    expect(await book.fails(4, "4-1-0", w1)).toBe(2);
    expect(await book.barred(4, w1, Date.now())).toEqual(new Set(["4-1-0"]));
    await book.undo(4, "4-1-0", w1, first);
    expect(await book.fails(4, "4-1-0", w1)).toBe(1);
  });
});

describe("AttemptBook cool-downs", () => {
  it("keeps a worker off a job until its cool-down ends, and only that worker", async () => {
    const now = Date.now();
    await book.coolDown(7, "7-1-0", w1, now, now + 1000);
    expect(await book.barred(7, w1, now)).toEqual(new Set(["7-1-0"]));
    expect(await book.barred(7, w1, now + 999)).toEqual(new Set(["7-1-0"]));
    expect(await book.barred(7, w1, now + 1000)).toEqual(new Set());
    expect(await book.barred(7, w2, now)).toEqual(new Set());
    // Together with a bar, and the same answer from the lease path's one-round-trip read.
    await book.recordGiveUp(7, "7-1-1", w1);
    expect(await book.barred(7, w1, now)).toEqual(new Set(["7-1-0", "7-1-1"]));
    const queues = (["merge", "base"] as const).map(
      (k) =>
        new Queue<ProofJobData>(blockQueueName(7, k), {
          connection: redisOptions(REDIS_URL) as ConnectionOptions,
          prefix: fabric.options.prefix,
        }),
    );
    try {
      const peeked = await peekHeads(fabric.redis, queues, book.barsAt(7, w1, now));
      expect(peeked.barred).toEqual(new Set(["7-1-0", "7-1-1"]));
      expect(peeked.ahead.map(headPriority)).toEqual([
        Number.POSITIVE_INFINITY,
        Number.POSITIVE_INFINITY,
      ]);
      const later = await peekHeads(fabric.redis, queues, book.barsAt(7, w1, now + 1000));
      expect(later.barred).toEqual(new Set(["7-1-1"]));
    } finally {
      await Promise.all(queues.map((q) => q.close()));
    }
  });
});

describe("ProvenanceBook", () => {
  it("lists each worker that proved a child of a node once", async () => {
    await fabric.provenance.record(4, "4-1-0", w1);
    await fabric.provenance.record(4, "4-1-0", w2);
    await fabric.provenance.record(4, "4-1-0", w1);
    const provers = await fabric.provenance.proversOf(4, ["4-1-0", "4-1-1"]);
    expect(provers.get("4-1-0")).toEqual([w1, w2]);
    expect(provers.has("4-1-1")).toBe(false);
  });
});

describe("retiring a block", () => {
  it("removes its attempt, provenance and hold keys, and only its own", async () => {
    await book.recordRetryable(5, "5-1-0", w1, 3);
    await fabric.provenance.record(5, "5-0-0", w1);
    await fabric.provenance.hold(5, "5-0-0", Date.now() + 60_000);
    await book.coolDown(5, "5-1-0", w1, Date.now(), Date.now() + 60_000);
    await book.recordRetryable(6, "6-1-0", w1, 3);
    await fabric.retireBlock(5);
    expect(await fabric.redis.exists(...book.keys(5), ...fabric.provenance.keys(5))).toBe(0);
    expect(await fabric.redis.exists(book.key(6))).toBe(1);
  });
});
