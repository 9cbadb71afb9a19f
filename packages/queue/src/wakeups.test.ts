import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import type { QueueKind } from "./catalog.ts";
import { LesseeWakeups, PENDING_HINT_MS, type WaitScope } from "./wakeups.ts";

function setup() {
  const events = new EventEmitter();
  let now = 1_000_000;
  const wakeups = new LesseeWakeups(events, () => now);
  const hint = (blockNumber: number, kind: QueueKind, by?: string) =>
    events.emit("work", { blockNumber, kind, ...(by ? { by } : {}) });
  const wakeAll = () => events.emit("work", null);
  const scope = (id: string, kinds: QueueKind[] = ["base", "merge"], blocks = [1]): WaitScope => ({
    id,
    kinds,
    blocks: new Set(blocks),
  });
  /** Starts waiting; `woken()` tells whether it has resolved, and with what. */
  const waiter = (s: WaitScope, since = wakeups.mark(), ms = 60_000, signal?: AbortSignal) => {
    let result: unknown = "pending";
    const done = wakeups.wait(s, since, ms, signal).then((w) => {
      result = w;
      return w;
    });
    return { done, result: () => result };
  };
  const settle = () => new Promise((r) => setImmediate(r));
  return {
    wakeups,
    hint,
    wakeAll,
    scope,
    waiter,
    settle,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe("LesseeWakeups", () => {
  it("wakes one waiter per hint: the one waiting longest among those that can take it", async () => {
    const t = setup();
    const a = t.waiter(t.scope("a"));
    const b = t.waiter(t.scope("b"));
    const c = t.waiter(t.scope("c"));
    t.hint(1, "merge");
    await t.settle();
    expect(a.result()).toMatchObject({ blockNumber: 1, kind: "merge" });
    expect(b.result()).toBe("pending");
    expect(c.result()).toBe("pending");
    t.hint(1, "base");
    await t.settle();
    expect(b.result()).toMatchObject({ blockNumber: 1, kind: "base" });
    expect(c.result()).toBe("pending");
    expect(t.wakeups.size).toBe(1);
  });

  it("skips waiters that could not take the job (other kinds, other blocks)", async () => {
    const t = setup();
    const rootOnly = t.waiter(t.scope("r", ["root"]));
    const otherBlock = t.waiter(t.scope("o", ["merge"], [2]));
    const fits = t.waiter(t.scope("f", ["merge"], [1, 2]));
    t.hint(1, "merge");
    await t.settle();
    expect(rootOnly.result()).toBe("pending");
    expect(otherBlock.result()).toBe("pending");
    expect(fits.result()).not.toBe("pending");
  });

  it("keeps a hint nobody could take, for a lessee whose attempt began before it", async () => {
    const t = setup();
    const since = t.wakeups.mark(); // an attempt starts...
    t.hint(1, "base"); // ...the job becomes ready while it runs, nobody waits
    const late = t.waiter(t.scope("a"), since);
    await t.settle();
    expect(late.result()).toMatchObject({ kind: "base" });
    // Taken once: the next one waits.
    const next = t.waiter(t.scope("b"), since);
    await t.settle();
    expect(next.result()).toBe("pending");
  });

  it("drops a kept hint older than the attempt: that attempt already saw the job", async () => {
    const t = setup();
    t.hint(1, "base");
    const w = t.waiter(t.scope("a")); // mark taken after the hint
    await t.settle();
    expect(w.result()).toBe("pending");
    // And it is gone for everyone, not just for this waiter.
    const old = t.waiter(t.scope("b"), 0);
    await t.settle();
    expect(old.result()).toBe("pending");
  });

  it("forgets kept hints after PENDING_HINT_MS", async () => {
    const t = setup();
    const since = t.wakeups.mark();
    t.hint(1, "base");
    t.advance(PENDING_HINT_MS + 1);
    const w = t.waiter(t.scope("a"), since);
    await t.settle();
    expect(w.result()).toBe("pending");
  });

  it("a hint without a job wakes everyone, and a lessee that was between attempts", async () => {
    const t = setup();
    const a = t.waiter(t.scope("a", ["root"]));
    const b = t.waiter(t.scope("b", ["base"], [9]));
    const since = t.wakeups.mark();
    t.wakeAll();
    await t.settle();
    expect(a.result()).toBeNull();
    expect(b.result()).toBeNull();
    const between = t.waiter(t.scope("c"), since);
    await t.settle();
    expect(between.result()).toBeNull();
    const after = t.waiter(t.scope("d"));
    await t.settle();
    expect(after.result()).toBe("pending");
  });

  it("passes an unusable hint on to the next waiter, never back to one that tried it", async () => {
    const t = setup();
    const a = t.waiter(t.scope("a"));
    const b = t.waiter(t.scope("b"));
    t.hint(1, "merge");
    const wake = await a.done;
    expect(wake).not.toBeNull();
    // "a" passed the job over (barred from it) and waits again.
    const a2 = t.waiter(t.scope("a"), 0);
    t.wakeups.passOn(wake!, "a");
    await t.settle();
    expect(b.result()).toMatchObject({ kind: "merge" });
    expect(a2.result()).toBe("pending");
    // "b" cannot use it either: nobody else waits, so it is kept, but not for "a" or "b".
    t.wakeups.passOn((await b.done)!, "b");
    const b2 = t.waiter(t.scope("b"), 0);
    await t.settle();
    expect(a2.result()).toBe("pending");
    expect(b2.result()).toBe("pending");
    const c = t.waiter(t.scope("c"), 0);
    await t.settle();
    expect(c.result()).toMatchObject({ kind: "merge" });
  });

  it("does not wake the lessee that gave a job back for that job", async () => {
    const t = setup();
    const giver = t.waiter(t.scope("g"));
    const other = t.waiter(t.scope("o"));
    t.hint(1, "base", "g");
    await t.settle();
    expect(giver.result()).toBe("pending");
    expect(other.result()).toMatchObject({ kind: "base" });
  });

  it("resolves null on timeout and on abort, and forgets the waiter", async () => {
    const t = setup();
    const timed = t.waiter(t.scope("a"), t.wakeups.mark(), 5);
    expect(await timed.done).toBeNull();
    const ac = new AbortController();
    const aborted = t.waiter(t.scope("b"), t.wakeups.mark(), 60_000, ac.signal);
    expect(t.wakeups.size).toBe(1);
    ac.abort();
    expect(await aborted.done).toBeNull();
    expect(t.wakeups.size).toBe(0);
    // A hint now finds no waiter: kept, not lost.
    const since = t.wakeups.mark();
    t.hint(1, "base");
    const late = t.waiter(t.scope("c"), since);
    await t.settle();
    expect(late.result()).toMatchObject({ kind: "base" });
  });

  it("counts the waits that slept until their time ran out, and only those", async () => {
    const t = setup();
    const hinted = t.waiter(t.scope("a"));
    t.hint(1, "base");
    await hinted.done;
    const all = t.waiter(t.scope("b"));
    t.wakeAll();
    await all.done;
    const ac = new AbortController();
    const aborted = t.waiter(t.scope("c"), t.wakeups.mark(), 60_000, ac.signal);
    ac.abort();
    await aborted.done;
    expect(t.wakeups.timeouts).toBe(0);
    await t.waiter(t.scope("d"), t.wakeups.mark(), 5).done;
    expect(t.wakeups.timeouts).toBe(1);
  });
});
