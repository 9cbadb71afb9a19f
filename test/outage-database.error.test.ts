// A relay whose link to Postgres stalls (the server accepts but never answers) or is cut
// (connections reset and refused). Requests that need the database answer 503 UNAVAILABLE with
// Retry-After (not 500 INTERNAL, not a hang), /livez stays 200, /readyz answers 503 naming the
// database, and once the link is back the relay serves again by itself (the pool makes new
// connections).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, signedBid } from "./fixtures.ts";
import { eventually } from "./harness.ts";
import { ask, type ProxiedRelay, startProxiedRelay } from "./support/proxied-relay.ts";

const errorCode = (body: unknown) => (body as { error?: { code?: string } }).error?.code;
const errorMessage = (body: unknown) => (body as { error?: { message?: string } }).error?.message;

describe.each(["stall", "cut"] as const)("Postgres link %s", { timeout: 240_000 }, (fault) => {
  let r: ProxiedRelay;

  beforeAll(async () => {
    r = await startProxiedRelay({
      DATABASE_CONNECT_TIMEOUT_MS: "1000",
      DATABASE_QUERY_TIMEOUT_MS: "1500",
    });
  });
  afterAll(async () => {
    await r?.close();
  });

  it("answers 503 UNAVAILABLE with Retry-After to reads and bids, then recovers", async () => {
    const bid = await signedBid(account(0x72), 7);
    expect((await ask(`${r.url}/readyz`)).status).toBe(200);
    r.databaseLink[fault]();

    expect((await ask(`${r.url}/livez`)).status).toBe(200);
    const ready = await ask(`${r.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(errorMessage(ready.body)).toMatch(/database down/);
    expect(errorMessage(ready.body)).toMatch(/redis up/);

    for (const call of [
      ask(`${r.url}/v1/auctions/7`),
      ask(`${r.url}/v1/bids`, { method: "POST", json: bid }),
    ]) {
      const answer = await call;
      expect(answer.status).toBe(503);
      expect(errorCode(answer.body)).toBe("UNAVAILABLE");
      expect(Number(answer.headers.get("retry-after"))).toBeGreaterThan(0);
    }

    r.databaseLink.restore();
    await eventually(async () => (await ask(`${r.url}/readyz`)).status === 200, 60_000, 200);
    const after = await eventually(
      async () => {
        const a = await ask(`${r.url}/v1/auctions/7`);
        return a.status === 404 ? a : null;
      },
      60_000,
      200,
    );
    expect(errorCode(after.body)).toBe("AUCTION_NOT_FOUND");
  });
});
