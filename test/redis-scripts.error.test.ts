// Redis keeps no Lua script across a restart. A fabric's connection loads every script the
// fabric runs as it comes back, so the first calls after a restart are not NOSCRIPT answers that
// need a second round trip (one of which made an agent's next look find it still full).
import { once } from "node:events";
import { planTree } from "@prover-boost/core";
import { ProofFabric } from "@prover-boost/queue";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, startRedisServer } from "./support/state-loss.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

/** How many NOSCRIPT answers the server gave since its statistics were reset. */
async function noscriptAnswers(probe: Redis): Promise<number> {
  const stats = await probe.info("errorstats");
  return Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(stats)?.[1] ?? 0);
}

describe("a fabric whose Redis restarted empty", () => {
  it("runs its scripts afterwards without a NOSCRIPT answer", async () => {
    const port = await freePort();
    let server = await startRedisServer(port);
    cleanups.push(async () => {
      if (server.exitCode === null) server.kill("SIGKILL");
    });
    const fabric = await ProofFabric.open({
      redisUrl: `redis://127.0.0.1:${port}`,
      prefix: "scripts",
      leaseMs: 60_000,
      checkStalled: false,
      subscribe: false,
    });
    cleanups.push(() => fabric.close());
    const tree = (block: number) =>
      fabric.addTree(
        block,
        planTree(2),
        () => 1,
        () => [],
      );
    await tree(1);
    expect((await fabric.take(1, ["base"], "before")).taken).not.toBeNull();

    server.kill("SIGKILL");
    await once(server, "exit");
    const back = once(fabric.redis, "ready");
    server = await startRedisServer(port);
    await back;

    const probe = new Redis(port, "127.0.0.1");
    cleanups.push(async () => probe.disconnect());
    await probe.config("RESETSTAT");
    await tree(2);
    expect((await fabric.take(2, ["base"], "after")).taken).not.toBeNull();
    expect(await noscriptAnswers(probe)).toBe(0);
  });
});
