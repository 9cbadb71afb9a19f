// The queue view at /admin/queues on real Redis and Postgres: 401 without the admin token (or
// with a wrong one), 200 with it as a bearer header or as the basic-auth password, read-only
// (405 on anything but GET), following the blocks being proven (a new block's queues appear, a
// paid block's go), and a 404 on a relay without ADMIN_TOKEN.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { ADMIN_TOKEN, eventually, type Stack, startStack } from "./harness.ts";
import { openUnclaimed, proveInTurns, signIn, waitForStage } from "./support/market-flow.ts";

const BLOCK = 41;
const LATER_BLOCK = 42;
const NEWEST_BLOCK = 43;

let stack: Stack;
let bare: Stack;

beforeAll(async () => {
  [stack, bare] = await Promise.all([
    startStack({ backend: "postgres" }),
    startStack({ backend: "postgres", env: { ADMIN_TOKEN: "" }, aggregator: false }),
  ]);
});
afterAll(async () => {
  await stack?.close();
  await bare?.close();
});

const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };
const basic = (password: string) => ({
  authorization: `Basic ${Buffer.from(`admin:${password}`).toString("base64")}`,
});

async function queueNames(): Promise<string[]> {
  const res = await fetch(`${stack.url}/admin/queues/api/queues`, { headers: bearer });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { queues: { name: string }[] };
  return body.queues.map((q) => q.name);
}

describe("the queue view", () => {
  it("answers 401 without the token or with a wrong one, asking the browser for it", async () => {
    for (const headers of [
      {},
      { authorization: "Bearer wrong-token" },
      basic("wrong-token"),
      { authorization: `Bearer ${ADMIN_TOKEN}x` },
    ]) {
      for (const path of ["/admin/queues", "/admin/queues/api/queues"]) {
        const res = await fetch(`${stack.url}${path}`, { headers });
        expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers.get("www-authenticate")).toMatch(/^Basic /);
        const body = (await res.json()) as { error: { code: string } };
        expect(body.error.code).toBe("UNAUTHORIZED");
      }
    }
  });

  it("serves the board with the token as a bearer header or basic-auth password", async () => {
    for (const headers of [bearer, basic(ADMIN_TOKEN)]) {
      const res = await fetch(`${stack.url}/admin/queues`, { headers });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/text\/html/);
      expect(await res.text()).toMatch(/<html/i);
    }
  });

  it("refuses actions: the view is read-only", async () => {
    const res = await fetch(`${stack.url}/admin/queues/api/queues/pause`, {
      method: "PUT",
      headers: bearer,
    });
    expect(res.status).toBe(405);
  });

  it("lists the queues of the blocks being proven, and a new block's as it comes", async () => {
    await openUnclaimed(stack, BLOCK, { txCount: 2 });
    await waitForStage(stack, BLOCK, "open_proving");
    const first = await eventually(async () => {
      const names = await queueNames();
      return names.includes(`b${BLOCK}-base`) ? names : null;
    });
    expect(first.filter((n) => n.startsWith(`b${BLOCK}-`)).sort()).toEqual([
      `b${BLOCK}-base`,
      `b${BLOCK}-merge`,
      `b${BLOCK}-root`,
    ]);
    expect(first.some((n) => n.startsWith(`b${LATER_BLOCK}-`))).toBe(false);
    // The queue's jobs are there to look at: the block's two leaves wait in its base queue.
    const res = await fetch(`${stack.url}/admin/queues/api/queues?activeQueue=b${BLOCK}-base`, {
      headers: bearer,
    });
    const body = (await res.json()) as {
      queues: { name: string; counts: Record<string, number> }[];
    };
    const base = body.queues.find((q) => q.name === `b${BLOCK}-base`)!;
    expect(Object.values(base.counts).reduce((s, n) => s + n, 0)).toBe(2);

    await openUnclaimed(stack, LATER_BLOCK, { txCount: 1 });
    await waitForStage(stack, LATER_BLOCK, "open_proving");
    const second = await eventually(async () => {
      const names = await queueNames();
      return names.includes(`b${LATER_BLOCK}-root`) ? names : null;
    });
    expect(second).toContain(`b${BLOCK}-base`);
  });

  it("drops a block's queues once it is paid, while a newer block's show", async () => {
    // Open proving: any operator may prove (the test stack asks no collateral for it).
    const worker = await signIn(stack, account(0x41b), "board-0");
    await proveInTurns(stack, LATER_BLOCK, [worker], "paid");
    await proveInTurns(stack, BLOCK, [worker], "paid");
    await openUnclaimed(stack, NEWEST_BLOCK, { txCount: 2 });
    await waitForStage(stack, NEWEST_BLOCK, "open_proving");
    const only = [`b${NEWEST_BLOCK}-base`, `b${NEWEST_BLOCK}-merge`, `b${NEWEST_BLOCK}-root`];
    const names = await eventually(async () => {
      const n = (await queueNames()).sort();
      return JSON.stringify(n) === JSON.stringify(only) ? n : null;
    }).catch(async (err: unknown) => {
      throw new Error(`${String(err)}; the board lists ${JSON.stringify(await queueNames())}`);
    });
    expect(names).toEqual(only);
  });

  it("is off (404) on a relay without ADMIN_TOKEN", async () => {
    for (const path of ["/admin/queues", "/admin/queues/api/queues"]) {
      const res = await fetch(`${bare.url}${path}`, { headers: bearer });
      expect(res.status).toBe(404);
    }
  });
});
