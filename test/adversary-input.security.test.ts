// Attack: loose input. Each test is one way main let sloppy or hostile input through (a mixed-case
// address with a wrong EIP-55 checksum was accepted; path numbers were coerced, `%20` read as block
// 0, `0x10` as 16, `1e3` as 1000; POST /v1/bids refused the decimal strings the contract
// promises; an unauthenticated admin call with a bad body got 400 before 401; a huge header got
// Node's bare 431; `?block=` was dropped once a cursor was given). Now each is refused with a
// stable code, or served as the contract says, and a refused request leaves no trace in state.
import { txsHash } from "@prover-boost/core";
import { keccak256, toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid, snapshot } from "./fixtures.ts";
import { ADMIN_TOKEN, type Stack, startStack } from "./harness.ts";
import { parseAnswer, portOf, rawRequest } from "./support/raw-http.ts";

const bidder = account(0x1a7e);
/** A mixed-case address whose checksum is wrong: the checksummed form with one letter flipped. */
const badChecksum = (a: string) => {
  const i = a.slice(2).search(/[a-fA-F]/) + 2;
  const c = a[i]!;
  return `${a.slice(0, i)}${c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()}${a.slice(i + 1)}`;
};

let stack: Stack;
beforeAll(async () => {
  // Requests here are injected, except the raw ones, which are meant to be cut off.
  stack = await startStack({
    aggregator: false,
    env: { RATE_LIMIT_PER_IP: "0", REQUEST_TIMEOUT_MS: "500" },
  });
  await stack.admin.deposit(bidder.address, 10n ** 24n);
  // Blocks a coerced path number would land on: `%20` → 0, `0x10` → 16, `1e3` → 1000, `01` → 1.
  for (const n of [0, 1, 16, 1000]) {
    const a = await openAuction(n);
    await stack.client.openAuction(a.auction, a.txs, a.signature);
  }
});
afterAll(async () => stack?.close());

async function send(
  method: "GET" | "POST" | "DELETE",
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await stack.relay.app.inject({
    method,
    url,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined
      ? {}
      : { payload: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  return {
    status: res.statusCode,
    body: res.json() as { error?: { code: string } } & Record<string, unknown>,
    headers: res.headers,
  };
}

/** Sends a write that must be refused and checks that nothing changed. */
async function refused(
  method: "POST" | "DELETE",
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const before = await snapshot(stack);
  const res = await send(method, url, body, headers);
  expect(await snapshot(stack), `${method} ${url} changed state`).toEqual(before);
  return res;
}

describe("addresses: a wrong EIP-55 checksum is refused, one-case hex is accepted", () => {
  it("GET /v1/provers/{a} and the list filters refuse a bad checksum", async () => {
    const bad = badChecksum(bidder.address);
    expect(bad.toLowerCase()).toBe(bidder.address.toLowerCase());
    for (const url of [
      `/v1/provers/${bad}`,
      `/v1/data/bids?prover=${bad}`,
      `/v1/data/auctions?sequencer=${bad}`,
      `/v1/workers?operator=${bad}`,
    ]) {
      const res = await send("GET", url);
      expect(res.status, url).toBe(400);
      expect(res.body.error?.code, url).toBe("BAD_ADDRESS_CHECKSUM");
    }
    for (const a of [
      bidder.address,
      bidder.address.toLowerCase(),
      `0x${bidder.address.slice(2).toUpperCase()}`,
    ]) {
      const res = await send("GET", `/v1/provers/${a}`);
      expect(res.status, a).toBe(200);
      expect(res.body.address).toBe(bidder.address);
    }
  });

  it("a bid whose prover has a bad checksum is refused and leaves no trace", async () => {
    const bid = await signedBid(bidder, 16);
    const res = await refused("POST", "/v1/bids", {
      quote: { ...bid.quote, prover: badChecksum(bidder.address) },
      signature: bid.signature,
    });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("BAD_ADDRESS_CHECKSUM");
  });

  it("a deposit to a bad checksum is refused and credits nothing", async () => {
    const res = await refused(
      "POST",
      "/v1/admin/deposits",
      { prover: badChecksum(account(0x1a7f).address), amount: "1000" },
      { authorization: `Bearer ${ADMIN_TOKEN}` },
    );
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("BAD_ADDRESS_CHECKSUM");
  });
});

describe("path and query integers are canonical decimal only", () => {
  const loose = ["%20", "0x10", "1e3", "+1", "01", "-1", "1.0", "%2B16", "9007199254740993"];

  it("GET /v1/auctions/{n} and /v1/blocks/{n} refuse every non-canonical form", async () => {
    for (const n of loose) {
      for (const url of [`/v1/auctions/${n}`, `/v1/blocks/${n}`, `/v1/blocks/${n}/tree`]) {
        const res = await send("GET", url);
        expect(res.status, url).toBe(400);
        expect(res.body.error?.code, url).toBe("INVALID_INTEGER");
      }
    }
    // Canonical forms still work, 0 included.
    for (const n of [0, 16, 1000]) {
      const res = await send("GET", `/v1/auctions/${n}`);
      expect(res.status, String(n)).toBe(200);
      expect(res.body.blockNumber).toBe(n);
    }
  });

  it("query integers (block, limit) refuse non-canonical forms", async () => {
    for (const q of [
      "block=0x10",
      "block=1e3",
      "block=%2B1",
      "block=01",
      "block=",
      "limit=1e2",
      "limit=0",
      "limit=501",
      "limit=%2010",
    ]) {
      const res = await send("GET", `/v1/data/auctions?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.error?.code, q).toBe("INVALID_INTEGER");
    }
  });

  it("GET /v1/blocks/{n}/txs/{i} refuses every non-canonical index", async () => {
    // Three uploaded transactions: a coerced index would land on 0 (`%20`) or 1 (the rest).
    const data = [toHex("tx-a"), toHex("tx-b"), toHex("tx-c")];
    const txs = data.map((d) => keccak256(d));
    const a = await openAuction(3000, { txCount: 3, txsHash: txsHash(txs) });
    await stack.client.openAuction(a.auction, txs, a.signature, data);
    for (const i of [0, 1, 2]) {
      const res = await send("GET", `/v1/blocks/3000/txs/${i}`);
      expect(res.status, String(i)).toBe(200);
      expect(res.body.index).toBe(i);
    }
    for (const i of [...loose, "1e0", "%201", "00", "65536"]) {
      const res = await send("GET", `/v1/blocks/3000/txs/${i}`);
      expect([res.status, res.body.error?.code], i).toEqual([400, "INVALID_INTEGER"]);
    }
  });

  it("a cancellation at a non-canonical block number is refused and changes nothing", async () => {
    const res = await refused("DELETE", `/v1/bids/0x10/${bidder.address}`, {
      issuedAt: Date.now(),
      signature: `0x${"11".repeat(65)}`,
    });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("INVALID_INTEGER");
  });
});

describe("uint256-sized fields travel as decimal strings, small ones also as numbers", () => {
  it("POST /v1/bids accepts epochToProve and validUntilSlot as decimal strings", async () => {
    const bid = await signedBid(bidder, 1000);
    const res = await send("POST", "/v1/bids", {
      quote: {
        ...bid.quote,
        epochToProve: String(bid.quote.epochToProve),
        validUntilSlot: String(bid.quote.validUntilSlot),
      },
      signature: bid.signature,
    });
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    expect(res.body.status).toBe("accepted");
  });

  it("POST /v1/auctions accepts blockNumber, slot, txCount and times as decimal strings", async () => {
    const a = await openAuction(2000);
    const asText = Object.fromEntries(
      Object.entries(a.auction).map(([k, v]) => [
        k,
        typeof v === "number" && k !== "maxFeeBps" ? String(v) : v,
      ]),
    );
    const res = await send("POST", "/v1/auctions", { ...a.body, auction: asText });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect((res.body.auction as { blockNumber: number }).blockNumber).toBe(2000);
  });

  it("a non-canonical decimal string in a body is refused and leaves no trace", async () => {
    const bid = await signedBid(bidder, 0);
    for (const epochToProve of ["00", "0x0", " 0", "-0", "1e0", ""]) {
      const res = await refused("POST", "/v1/bids", {
        quote: { ...bid.quote, epochToProve },
        signature: bid.signature,
      });
      expect(res.status, epochToProve).toBe(400);
      expect(res.body.error?.code, epochToProve).toBe("INVALID_INTEGER");
    }
    const res = await refused("POST", "/v1/bids", {
      quote: { ...bid.quote, bondAmount: "05000" },
      signature: bid.signature,
    });
    expect(res.body.error?.code).toBe("INVALID_INTEGER");
  });

  it("an auction's slot beyond uint256, or an unsafe JSON number, is refused and leaves no trace", async () => {
    const a = await openAuction(2001);
    for (const slot of [(2n ** 256n).toString(), 2 ** 53, -1, "0x10"]) {
      const res = await refused("POST", "/v1/auctions", {
        ...a.body,
        auction: { ...a.auction, slot },
      });
      expect([res.status, res.body.error?.code], String(slot)).toEqual([400, "INVALID_INTEGER"]);
    }
  });

  it("a validUntilSlot beyond uint256, or an unsafe JSON number, is refused and leaves no trace", async () => {
    const bid = await signedBid(bidder, 0);
    for (const validUntilSlot of [(2n ** 256n).toString(), 2 ** 53, -1, 1.5, "0x10", "01"]) {
      const res = await refused("POST", "/v1/bids", {
        quote: { ...bid.quote, validUntilSlot },
        signature: bid.signature,
      });
      expect([res.status, res.body.error?.code], String(validUntilSlot)).toEqual([
        400,
        "INVALID_INTEGER",
      ]);
    }
  });
});

describe("authentication comes before validation", () => {
  const bodies = ["{", "[]", JSON.stringify({ prover: "nope", amount: -1 }), JSON.stringify({})];

  it("an unauthenticated admin call with a bad body is a 401, and credits nothing", async () => {
    for (const body of bodies) {
      for (const headers of [{}, { authorization: "Bearer wrong-token" }] as Record<
        string,
        string
      >[]) {
        const res = await refused("POST", "/v1/admin/deposits", body, headers);
        expect(res.status, body).toBe(401);
        expect(res.body.error?.code).toBe("UNAUTHORIZED");
      }
    }
    // With the token the same bad body is a 400.
    const res = await refused("POST", "/v1/admin/deposits", bodies[2], {
      authorization: `Bearer ${ADMIN_TOKEN}`,
    });
    expect(res.status).toBe(400);
  });

  it("worker calls without a valid session are 401 whatever the body", async () => {
    for (const url of [
      "/v1/jobs/lease",
      "/v1/jobs/1-0-0/result",
      "/v1/jobs/1-0-0/fail",
      "/v1/jobs/1-0-0/heartbeat",
    ]) {
      for (const body of bodies) {
        const res = await refused("POST", url, body, { authorization: `Bearer ${"x".repeat(43)}` });
        expect(res.status, `${url} ${body}`).toBe(401);
        expect(res.body.error?.code).toBe("UNAUTHORIZED");
      }
    }
  });
});

describe("authentication after the per-IP rate limit", () => {
  it("a flood of bad credentials is rate limited before it costs a session lookup", async () => {
    // Its own relay with a small per-IP budget over a window far longer than the test.
    const limited = await startStack({
      aggregator: false,
      env: { RATE_LIMIT_PER_IP: "3", RATE_LIMIT_WINDOW_MS: "600000" },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await limited.relay.app.inject({
          method: "POST",
          url: "/v1/jobs/lease",
          headers: {
            authorization: `Bearer ${"y".repeat(43)}`,
            "content-type": "application/json",
          },
          payload: "{",
        });
        statuses.push(res.statusCode);
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
    } finally {
      await limited.close();
    }
  });
});

async function raw(request: string) {
  const answer = parseAnswer(await rawRequest(portOf(stack.relay.app.server), request));
  return { ...answer, body: JSON.parse(answer.body) as { error: Record<string, string> } };
}

const errorShape = (code: string) => ({
  error: { code, message: expect.any(String), requestId: expect.any(String) },
});

describe("every error answer is in the one error shape", () => {
  it("a huge header is a 431 HEADERS_TOO_LARGE with the error body", async () => {
    const res = await raw(
      `GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`,
    );
    expect(res.status).toBe(431);
    expect(res.body).toEqual(errorShape("HEADERS_TOO_LARGE"));
    expect(res.headers["x-request-id"]).toBe(res.body.error.requestId);
  });

  it("a malformed request line is a 400 with the error body", async () => {
    const res = await raw("NOT AN HTTP REQUEST\r\n\r\n");
    expect(res.status).toBe(400);
    expect(res.body).toEqual(errorShape("VALIDATION_FAILED"));
  });

  it("a request that does not arrive in time is a 408 REQUEST_TIMEOUT with the error body", async () => {
    // Headers begun and never finished: the server's own timer (REQUEST_TIMEOUT_MS) ends it.
    const res = await raw("GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    expect(res.status).toBe(408);
    expect(res.body).toEqual(errorShape("REQUEST_TIMEOUT"));
    expect(res.headers["x-request-id"]).toBe(res.body.error.requestId);
  });

  it("a body too large (413) or not JSON (415) is refused in the shape, changing nothing", async () => {
    const big = await refused("POST", "/v1/bids", JSON.stringify({ pad: "x".repeat(1_100_000) }));
    expect(big.status).toBe(413);
    expect(big.body).toEqual(errorShape("PAYLOAD_TOO_LARGE"));
    const before = await snapshot(stack);
    const text = await stack.relay.app.inject({
      method: "POST",
      url: "/v1/bids",
      headers: { "content-type": "application/xml" },
      payload: "<quote/>",
    });
    expect(await snapshot(stack)).toEqual(before);
    expect(text.statusCode).toBe(415);
    expect(text.json()).toEqual(errorShape("UNSUPPORTED_MEDIA_TYPE"));
  });

  it("a known path with the wrong method is a 405 with Allow; an unknown path a 404", async () => {
    const res = await send("DELETE", "/v1/auctions/16");
    expect(res.status).toBe(405);
    expect(res.body).toEqual(errorShape("METHOD_NOT_ALLOWED"));
    expect(res.headers.allow).toContain("GET");
    const put = await send("POST", "/v1/info", {});
    expect(put.status).toBe(405);
    const none = await send("GET", "/v1/no-such-thing");
    expect(none.status).toBe(404);
    expect(none.body).toEqual(errorShape("NOT_FOUND"));
  });
});

describe("list filters hold across pages", () => {
  it("/v1/data/auctions honours block together with a cursor", async () => {
    const res = await send("GET", "/v1/data/auctions?block=16&cursor=1000_1000");
    expect(res.status).toBe(200);
    expect((res.body.items as { blockNumber: number }[]).map((a) => a.blockNumber)).toEqual([16]);
    const past = await send("GET", "/v1/data/auctions?block=1000&cursor=16_16");
    expect(past.body.items).toEqual([]);
    // Paging a filtered list: every page holds only what the filter selects.
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: Record<string, unknown> } = await send(
        "GET",
        `/v1/data/auctions?status=open&limit=1${cursor ? `&cursor=${cursor}` : ""}`,
      );
      seen.push(...(page.body.items as { blockNumber: number }[]).map((a) => a.blockNumber));
      cursor = page.body.nextCursor as string | null;
    } while (cursor);
    expect(seen).toEqual([...seen].sort((a, b) => b - a));
    expect(new Set(seen).size).toBe(seen.length);
  });
});
