import { describe, expect, it } from "vitest";
import {
  GroupCommit,
  type GroupCommitOptions,
  LanedGroupCommit,
  laneIndex,
} from "./group-commit.ts";

/** A group commit whose write returns its items and records each batch it was given. */
function recording(opts: GroupCommitOptions) {
  const writes: number[][] = [];
  const gc = new GroupCommit<number, number>(async (items) => {
    writes.push(items);
    return items;
  }, opts);
  return { gc, writes };
}

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

  it("tells each write's size when it starts and its time when its items have their results", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const told: string[] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        await gate;
        return items;
      },
      {
        maxBatch: 10,
        maxInFlight: 1,
        onBatch: (n) => told.push(`batch ${n}`),
        onWritten: (ms) => told.push(ms >= 20 ? "written" : `written after only ${ms} ms`),
      },
    );
    const both = Promise.all([gc.submit(1), gc.submit(2)]);
    await new Promise((r) => setTimeout(r, 25));
    expect(told).toEqual(["batch 2"]);
    release();
    await both;
    await new Promise((r) => setImmediate(r));
    expect(told).toEqual(["batch 2", "written"]);
  });

  it("splits at maxBatch", async () => {
    const { gc, writes } = recording({ maxBatch: 2, maxInFlight: 4 });
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

  it("with failsAll, an error about no one item (the database stalled) fails the whole write at once", async () => {
    const writes: number[][] = [];
    const down = Object.assign(new Error("pool timeout"), { code: "P2024" });
    const gc = new GroupCommit<number, number>(
      async (items) => {
        writes.push(items);
        throw items.length > 1 && items.includes(2) ? new Error("bad item") : down;
      },
      { maxBatch: 10, maxInFlight: 1, failsAll: (err) => err === down },
    );
    // One write, every item told its error: no item is written again alone.
    const results = await Promise.allSettled([1, 3, 4].map((i) => gc.submit(i)));
    expect(results.map((r) => (r.status === "rejected" ? r.reason : r.value))).toEqual([
      down,
      down,
      down,
    ]);
    expect(writes).toEqual([[1, 3, 4]]);
    // Any other error still splits the write.
    writes.length = 0;
    await Promise.allSettled([1, 2].map((i) => gc.submit(i)));
    expect(writes).toEqual([[1, 2], [1], [2]]);
  });

  it("redoes a failed batch one item at a time, in order, never more writes in flight than allowed", async () => {
    const started: number[][] = [];
    const finished: number[][] = [];
    let inFlight = 0;
    let most = 0;
    const gc = new GroupCommit<number, number>(
      async (items) => {
        started.push(items);
        inFlight++;
        most = Math.max(most, inFlight);
        // Later items finish sooner: only sequential retries keep the order.
        await new Promise((r) => setTimeout(r, items.length === 1 ? 10 - items[0]! : 1));
        inFlight--;
        if (items.length > 1) throw new Error("batch failed");
        finished.push(items);
        return items;
      },
      { maxBatch: 10, maxInFlight: 1 },
    );
    const results = await Promise.all([1, 2, 3, 4].map((i) => gc.submit(i)));
    expect(results).toEqual([1, 2, 3, 4]);
    expect(started).toEqual([[1, 2, 3, 4], [1], [2], [3], [4]]);
    expect(finished).toEqual([[1], [2], [3], [4]]);
    expect(most).toBe(1);
  });

  it("a write returning the wrong number of results is redone item by item", async () => {
    const gc = new GroupCommit<number, number>(async (items) => items.slice(0, 1), {
      maxBatch: 10,
      maxInFlight: 1,
    });
    expect(await Promise.all([gc.submit(1), gc.submit(2)])).toEqual([1, 2]);
  });

  it("with minIntervalMs, items arriving soon after a write wait and go together in the next", async () => {
    const { gc, writes } = recording({ maxBatch: 100, maxInFlight: 1, minIntervalMs: 200 });
    await gc.submit(1);
    const rest: Promise<number>[] = [];
    for (const i of [2, 3, 4]) {
      rest.push(gc.submit(i));
      // Without the interval, each item would be written alone in this turn of the loop.
      await new Promise((r) => setImmediate(r));
    }
    expect(writes).toEqual([[1]]);
    expect(gc.waiting).toBe(3);
    expect(await Promise.all(rest)).toEqual([2, 3, 4]);
    expect(writes).toEqual([[1], [2, 3, 4]]);
  });

  it("with minIntervalMs, an item reaching a writer idle for longer than the interval is written at once", async () => {
    const { gc, writes } = recording({ maxBatch: 100, maxInFlight: 1, minIntervalMs: 20 });
    await gc.submit(1);
    await new Promise((r) => setTimeout(r, 60));
    void gc.submit(2);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([[1], [2]]);
  });
});

describe("GroupCommit riders", () => {
  it("a rider starts no write before its time, then goes with the riders queued meanwhile", async () => {
    const { gc, writes } = recording({ maxBatch: 100, maxInFlight: 2 });
    const started = performance.now();
    const first = gc.submit(1, { rideMs: 300 });
    await new Promise((r) => setImmediate(r));
    const second = gc.submit(2, { rideMs: 300 });
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([]);
    expect(await first).toBe(1);
    expect(performance.now() - started).toBeGreaterThanOrEqual(298);
    expect(await second).toBe(2);
    expect(writes).toEqual([[1, 2]]);
  });

  it("riders go with the next write another item starts, at once", async () => {
    const { gc, writes } = recording({ maxBatch: 100, maxInFlight: 1 });
    const riders = [gc.submit(1, { rideMs: 60_000 }), gc.submit(2, { rideMs: 60_000 })];
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([]);
    // An item that does not ride starts a write in this turn; the riders go with it.
    expect(await gc.submit(3)).toBe(3);
    expect(await Promise.all(riders)).toEqual([1, 2]);
    expect(writes).toEqual([[1, 2, 3]]);
  });

  it("a rider submitted while a write is in flight goes with the next write another item starts", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const writes: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        writes.push(items);
        if (writes.length === 1) await gate;
        return items;
      },
      { maxBatch: 100, maxInFlight: 1 },
    );
    const first = gc.submit(1);
    await new Promise((r) => setImmediate(r));
    const rider = gc.submit(2, { rideMs: 60_000 });
    const urgent = gc.submit(3);
    release();
    expect(await Promise.all([first, rider, urgent])).toEqual([1, 2, 3]);
    expect(writes).toEqual([[1], [2, 3]]);
    expect(gc.waiting).toBe(0);
  });

  it("a failed write with riders is written again item by item, riders included", async () => {
    const writes: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        writes.push(items);
        if (writes.length === 1) throw new Error("deadlock detected");
        return items;
      },
      { maxBatch: 100, maxInFlight: 1 },
    );
    const rider = gc.submit(1, { rideMs: 60_000 });
    const starter = gc.submit(2);
    expect(await Promise.all([rider, starter])).toEqual([1, 2]);
    expect(writes).toEqual([[1, 2], [1], [2]]);
  });
});

describe("LanedGroupCommit", () => {
  const keyOf = (item: string) => item.split(":")[0]!;

  it("never has two writes in flight that share a key, and writes different lanes in parallel", async () => {
    const inFlight: string[][] = [];
    let overlaps = 0;
    let mostAtOnce = 0;
    const gc = new LanedGroupCommit<string, string>(
      async (items) => {
        const keys = new Set(items.map(keyOf));
        if (inFlight.some((other) => other.some((i) => keys.has(keyOf(i))))) overlaps++;
        inFlight.push(items);
        mostAtOnce = Math.max(mostAtOnce, inFlight.length);
        await new Promise((r) => setTimeout(r, 2));
        inFlight.splice(inFlight.indexOf(items), 1);
        return items.map((i) => i.toUpperCase());
      },
      keyOf,
      { maxBatch: 8, lanes: 4 },
    );
    const items = Array.from({ length: 400 }, (_, n) => `p${n % 23}:bid${n}`);
    const results = await Promise.all(items.map((i) => gc.submit(i)));
    expect(results).toEqual(items.map((i) => i.toUpperCase()));
    expect(overlaps).toBe(0);
    expect(mostAtOnce).toBeGreaterThan(1);
    expect(mostAtOnce).toBeLessThanOrEqual(4);
    expect(gc.waiting).toBe(0);
  });

  it("keeps a key's items in submission order", async () => {
    const written: string[] = [];
    const gc = new LanedGroupCommit<string, string>(
      async (items) => {
        written.push(...items);
        return items;
      },
      keyOf,
      { maxBatch: 3, lanes: 3 },
    );
    const items = Array.from({ length: 60 }, (_, n) => `p${n % 5}:${n}`);
    await Promise.all(items.map((i) => gc.submit(i)));
    for (let k = 0; k < 5; k++) {
      const mine = (list: string[]) => list.filter((i) => keyOf(i) === `p${k}`);
      expect(mine(written)).toEqual(mine(items));
    }
  });

  it("maps a key to the same lane every time, in range, spreading keys over all lanes", () => {
    const keys = Array.from({ length: 600 }, (_, n) => `0x${n.toString(16).padStart(40, "0")}`);
    const counts = new Array(4).fill(0);
    for (const k of keys) {
      const lane = laneIndex(k, 4);
      expect(laneIndex(k, 4)).toBe(lane);
      expect(lane).toBeGreaterThanOrEqual(0);
      expect(lane).toBeLessThan(4);
      counts[lane]++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(100);
    expect(laneIndex("anything", 1)).toBe(0);
  });
});
