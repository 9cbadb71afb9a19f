// Property-based fuzzing of strict input on real Redis and Postgres: the relay must not only
// refuse in shape (exercise(), test/support/fuzz-stack.ts) but give the right verdict for each
// class of loose input:
// - address casings: accepted iff one case throughout or the right EIP-55 checksum, else
//   400 BAD_ADDRESS_CHECKSUM;
// - integers in paths and queries: canonical decimal served, any other spelling 400
//   INVALID_INTEGER (never coerced into another block);
// - uint fields of a bid as JSON numbers or decimal strings: both accepted alike, a non-canonical
//   string 400 INVALID_INTEGER with nothing changed;
// - authenticated routes without a valid credential: 401 whatever the body, type or method of
//   spelling it;
// - headers past the server's limit: 431 HEADERS_TOO_LARGE in the error shape, over a real socket.
import { maxHeaderSize } from "node:http";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN } from "./harness.ts";
import { contentType, jsonValue, nonJson } from "./support/fuzz-bodies.ts";
import { addressCasing, auth, authHeader, intSpelling, uintField } from "./support/fuzz-params.ts";
import {
  exercise,
  fx,
  OPEN_BLOCK,
  PROVING_BLOCK,
  property,
  prover,
  useFuzzStack,
  withBody,
} from "./support/fuzz-stack.ts";
import { parseAnswer, portOf, rawRequest } from "./support/raw-http.ts";

useFuzzStack();

async function get(url: string) {
  const res = await fx.stack.relay.app.inject({ method: "GET", url });
  return {
    status: res.statusCode,
    body: res.json() as { error?: { code: string } } & Record<string, unknown>,
  };
}

describe("strict input: the right verdict for every spelling", () => {
  it("address casings: valid iff one case or the right checksum", () =>
    property(
      fc.record({
        a: addressCasing(prover.address),
        where: fc.constantFrom("prover", "bids", "penalties", "workers"),
      }),
      async ({ a, where }) => {
        const url = {
          prover: `/v1/provers/${a.value}`,
          bids: `/v1/data/bids?prover=${a.value}`,
          penalties: `/v1/data/penalties?operator=${a.value}`,
          workers: `/v1/workers?operator=${a.value}`,
        }[where];
        await exercise({ method: "GET", url, headers: {} });
        const res = await get(url);
        if (a.valid) expect(res.status, url).toBe(200);
        else expect([res.status, res.body.error?.code], url).toEqual([400, "BAD_ADDRESS_CHECKSUM"]);
      },
      60,
    ));

  it("path and query integers: canonical served, every other spelling INVALID_INTEGER", () =>
    property(
      fc
        .constantFrom(0, 1, OPEN_BLOCK, PROVING_BLOCK, 100, 2_147_483_647)
        .chain((n) => fc.record({ n: fc.constant(n), s: intSpelling(n) })),
      async ({ s }) => {
        const t = encodeURIComponent(s.text);
        for (const url of [
          `/v1/auctions/${t}`,
          `/v1/blocks/${t}`,
          `/v1/blocks/${t}/tree`,
          `/v1/data/auctions?block=${t}`,
          `/v1/data/bids?block=${t}`,
          `/v1/data/payouts?block=${t}`,
        ]) {
          await exercise({ method: "GET", url, headers: {} });
          const res = await get(url);
          if (s.canonical) expect(res.body.error?.code, url).not.toBe("INVALID_INTEGER");
          else expect([res.status, res.body.error?.code], url).toEqual([400, "INVALID_INTEGER"]);
        }
      },
      60,
    ));

  it("limit: 1..500 in canonical decimal only", () =>
    property(
      fc.integer({ min: 0, max: 600 }).chain((n) => intSpelling(n).map((s) => ({ n, s }))),
      async ({ n, s }) => {
        const url = `/v1/data/auctions?limit=${encodeURIComponent(s.text)}`;
        await exercise({ method: "GET", url, headers: {} });
        const res = await get(url);
        if (s.canonical && n >= 1 && n <= 500) expect(res.status, url).toBe(200);
        else expect([res.status, res.body.error?.code], url).toEqual([400, "INVALID_INTEGER"]);
      },
      40,
    ));

  it("a bid's uint fields as numbers or decimal strings are one and the same bid", async () => {
    const base = fx.bases.bid![0] as {
      quote: { epochToProve: number; validUntilSlot: number; bondAmount: string };
      signature: string;
    };
    const first = await fx.stack.relay.app.inject({
      method: "POST",
      url: "/v1/bids",
      payload: base,
    });
    expect(first.statusCode, first.body).toBeLessThan(300);
    const bidId = (first.json() as { bidId: string }).bidId;
    await property(
      fc.record({
        epochToProve: uintField(base.quote.epochToProve),
        validUntilSlot: uintField(base.quote.validUntilSlot),
        bondAmount: fc.oneof(
          fc.constant({ value: base.quote.bondAmount, canonical: true }),
          fc
            .constantFrom("0", " ", "+")
            .map((p) => ({ value: `${p}${base.quote.bondAmount}`, canonical: false })),
        ),
      }),
      async (f) => {
        const body = {
          ...base,
          quote: {
            ...base.quote,
            epochToProve: f.epochToProve.value,
            validUntilSlot: f.validUntilSlot.value,
            bondAmount: f.bondAmount.value,
          },
        };
        const canonical =
          f.epochToProve.canonical && f.validUntilSlot.canonical && f.bondAmount.canonical;
        const req = {
          method: "POST" as const,
          url: "/v1/bids",
          ...withBody("application/json", JSON.stringify(body)),
        };
        await exercise(req);
        const res = await fx.stack.relay.app.inject(req);
        if (canonical) {
          expect(res.statusCode, res.body).toBeLessThan(300);
          expect((res.json() as { bidId: string }).bidId).toBe(bidId);
        } else {
          expect([res.statusCode, (res.json() as { error: { code: string } }).error.code]).toEqual([
            400,
            "INVALID_INTEGER",
          ]);
        }
      },
      40,
    );
  });

  it("authenticated routes without a valid credential are 401 whatever the body", () =>
    property(
      fc.record({
        route: fc.constantFrom(
          "/v1/admin/deposits",
          "/v1/jobs/lease",
          `/v1/jobs/${PROVING_BLOCK}-0-0/heartbeat`,
          `/v1/jobs/${PROVING_BLOCK}-0-0/result`,
          `/v1/jobs/${PROVING_BLOCK}-0-0/fail`,
          "/v1/jobs/%zz/result",
          `/v1/jobs/${"9".repeat(150)}/fail`,
        ),
        auth: auth.filter((a) => a.t !== "valid"),
        body: fc.oneof(
          jsonValue(3).map((v) => JSON.stringify(v)),
          nonJson,
          fc.constant(undefined),
        ),
        ct: contentType,
      }),
      async ({ route, auth: a, body, ct }) => {
        const token = route.startsWith("/v1/admin") ? ADMIN_TOKEN : fx.mainWorker.token;
        const req = withBody(ct, body);
        const r = {
          method: "POST" as const,
          url: route,
          headers: { ...req.headers, ...authHeader(a, token) },
          payload: req.payload,
        };
        await exercise(r);
        const res = await fx.stack.relay.app.inject(r);
        // A path the router cannot read is refused before any route (and its hooks) is chosen.
        if (route.includes("%zz") || route.includes("9".repeat(150))) {
          expect(res.statusCode).toBeLessThan(500);
          return;
        }
        expect(res.statusCode, `${route} ${JSON.stringify(r.headers)} ${res.body}`).toBe(401);
      },
      80,
    ));

  it("headers past the server's limit: 431 HEADERS_TOO_LARGE in the error shape", () =>
    property(
      fc.record({
        size: fc.integer({ min: maxHeaderSize + 1, max: 8 * maxHeaderSize }),
        pieces: fc.integer({ min: 1, max: 40 }),
        path: fc.constantFrom("/v1/info", "/v1/bids", "/nowhere", `/v1/provers/${prover.address}`),
      }),
      async ({ size, pieces, path }) => {
        const each = Math.ceil(size / pieces);
        const headers = Array.from({ length: pieces }, (_, i) => `x-h${i}: ${"a".repeat(each)}`);
        const res = parseAnswer(
          await rawRequest(
            portOf(fx.stack.relay.app.server),
            `GET ${path} HTTP/1.1\r\nHost: x\r\n${headers.join("\r\n")}\r\n\r\n`,
          ),
        );
        expect(res.status).toBe(431);
        const body = JSON.parse(res.body) as { error: Record<string, unknown> };
        expect(body).toEqual({
          error: {
            code: "HEADERS_TOO_LARGE",
            message: expect.any(String),
            requestId: expect.any(String),
          },
        });
        expect(res.headers["x-request-id"]).toBe(body.error.requestId);
      },
      20,
    ));

  it("headers within the limit are served", async () => {
    const res = parseAnswer(
      await rawRequest(
        portOf(fx.stack.relay.app.server),
        `GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-h: ${"a".repeat(maxHeaderSize / 2)}\r\n\r\n`,
      ),
    );
    expect(res.status).toBe(200);
  });
});
