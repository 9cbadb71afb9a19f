// Readiness announcements between processes, on a real Redis: a hint names one job's block and
// queue, a blocks change is its own message, and a process does not hear its own announcements
// twice.
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import type { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { ProofFabric } from "./fabric.ts";
import type { WorkHint } from "./wakeups.ts";

const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

describe("announcements across relay processes", () => {
  const open: ProofFabric[] = [];
  afterEach(async () => {
    await open[0]?.obliterate();
    await Promise.all(open.splice(0).map((f) => f.close()));
  });

  async function twoProcesses() {
    const prefix = `pbtest-ann-${randomBytes(4).toString("hex")}`;
    const a = await ProofFabric.open({ redisUrl, prefix, leaseMs: 1000, checkStalled: false });
    const b = await ProofFabric.open({ redisUrl, prefix, leaseMs: 1000, checkStalled: false });
    open.push(a, b);
    const heard = (f: ProofFabric) => {
      const log: { event: string; hint?: WorkHint }[] = [];
      f.events.on("work", (hint: WorkHint) => log.push({ event: "work", hint }));
      f.events.on("blocks", () => log.push({ event: "blocks" }));
      return log;
    };
    return { a, b, heardA: heard(a), heardB: heard(b) };
  }

  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  };

  it("carries a job's hint to the other process; the sender hears it once", async () => {
    const { a, heardA, heardB } = await twoProcesses();
    await a.announce({ blockNumber: 7, kind: "merge", by: "session-1" });
    await until(() => heardB.length > 0);
    expect(heardB).toEqual([
      { event: "work", hint: { blockNumber: 7, kind: "merge", by: "session-1" } },
    ]);
    await a.announce(); // a broad one, to be sure the first did not come back late
    await until(() => heardB.length > 1);
    expect(heardA).toEqual([
      { event: "work", hint: { blockNumber: 7, kind: "merge", by: "session-1" } },
      { event: "work", hint: null },
    ]);
    expect(heardB[1]).toEqual({ event: "work", hint: null });
  });

  it("tells the other process that the blocks being proven changed, and wakes everyone", async () => {
    const { a, heardB } = await twoProcesses();
    await a.announceBlocks();
    await until(() => heardB.length > 1);
    expect(heardB).toEqual([{ event: "blocks" }, { event: "work", hint: null }]);
  });

  it("reads a message it does not understand as a broad announcement", async () => {
    const { a, b, heardB } = await twoProcesses();
    await a.redis.publish(b.channel, "1");
    await until(() => heardB.length > 0);
    expect(heardB).toEqual([{ event: "work", hint: null }]);
  });

  it("still reach a process whose connection dropped again before Redis confirmed its resubscribe", async () => {
    const { a, b, heardB } = await twoProcesses();
    const sub = (b as unknown as { subscriber: Redis }).subscriber;
    const ready = () => new Promise<void>((r) => sub.once("ready", () => r()));
    // The first new connection drops before ioredis's resubscribe on it is confirmed (here,
    // before it even leaves: writes wait for the end of the pass); the next one stays.
    const cut = new Promise<void>((resolve) =>
      sub.once("ready", () => {
        const socket = sub.stream as Socket;
        socket.pause();
        socket.destroy();
        resolve();
      }),
    );
    sub.disconnect(true);
    await cut;
    await ready();
    // Announced until heard, for up to 2.5 s (a subscribe answered late is still heard).
    for (let i = 0; i < 50 && heardB.length === 0; i++) {
      await a.announce();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(heardB.length).toBeGreaterThan(0);
  });
});
