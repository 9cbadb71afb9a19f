// The fault proxy itself, against the real Redis: a stalled link holds commands until it is
// restored, a cut link fails them, and a restored one serves new connections again.
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { TEST_REDIS_URL } from "../harness.ts";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";

describe("fault proxy", () => {
  let proxy: FaultProxy | undefined;
  let client: Redis | undefined;
  afterEach(async () => {
    client?.disconnect();
    await proxy?.close();
  });

  it("holds bytes while stalled, delivers them when restored, refuses while cut", async () => {
    proxy = await startFaultProxy(TEST_REDIS_URL);
    client = new Redis(proxy.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => {});
    expect(await client.ping()).toBe("PONG");
    expect(proxy.connections()).toBe(1);

    proxy.stall();
    let answered = false;
    const held = client.ping().then((v) => {
      answered = true;
      return v;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(answered).toBe(false);
    proxy.restore();
    expect(await held).toBe("PONG");

    proxy.cut();
    await expect(client.ping()).rejects.toThrow();
    expect(proxy.connections()).toBe(0);
    const refused = new Redis(proxy.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    refused.on("error", () => {});
    await expect(refused.ping()).rejects.toThrow();
    refused.disconnect();

    proxy.restore();
    const again = new Redis(proxy.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    again.on("error", () => {});
    expect(await again.ping()).toBe("PONG");
    again.disconnect();
  });
});
