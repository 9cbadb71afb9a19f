import { describe, expect, it } from "vitest";
import { GroupCommit } from "./group-commit.ts";

describe("GroupCommit", () => {
  it("gathers items submitted while a write is in flight into one write", async () => {
    const writes: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const gc = new GroupCommit<number, number>(
      async (items) => {
        writes.push(items);
        if (writes.length === 1) await gate;
        return items.map((i) => i * 10);
      },
      { maxBatch: 100, maxInFlight: 1 },
    );
    const first = gc.submit(1);
    await new Promise((r) => setImmediate(r));
    const rest = [2, 3, 4].map((i) => gc.submit(i));
    await new Promise((r) => setImmediate(r));
    expect(gc.waiting).toBe(3);
    release();
    expect(await first).toBe(10);
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(writes).toEqual([[1], [2, 3, 4]]);
  });

  it("splits at maxBatch", async () => {
    const writes: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        writes.push(items);
        return items;
      },
      { maxBatch: 2, maxInFlight: 4 },
    );
    await Promise.all([1, 2, 3, 4, 5].map((i) => gc.submit(i)));
    expect(writes).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("a failing batch is retried item by item so only the bad item fails", async () => {
    const writes: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        writes.push(items);
        if (items.includes(2)) throw new Error("bad item");
        return items;
      },
      { maxBatch: 10, maxInFlight: 1 },
    );
    const results = await Promise.allSettled([1, 2, 3].map((i) => gc.submit(i)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(writes).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it("a write returning the wrong number of results is redone item by item", async () => {
    const gc = new GroupCommit<number, number>(async (items) => items.slice(0, 1), {
      maxBatch: 10,
      maxInFlight: 1,
    });
    expect(await Promise.all([gc.submit(1), gc.submit(2)])).toEqual([1, 2]);
  });
});
