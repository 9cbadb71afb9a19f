// Property-based fuzzing of the router on real Redis and Postgres, through `app.inject`: any
// method (GET, POST, DELETE, PUT, PATCH) at known and unknown paths, with random JSON, random
// text or no body, under assorted content types.
// Every request goes through exercise() (test/support/fuzz-stack.ts): never a 5xx, every error in
// the contract's shape with the status its code maps to, and a refused write changes nothing.
import fc from "fast-check";
import { describe, it } from "vitest";
import { contentType, jsonValue, nonJson } from "./support/fuzz-bodies.ts";
import { wellFormed } from "./support/fuzz-params.ts";
import {
  exercise,
  OPEN_BLOCK,
  PROVING_BLOCK,
  property,
  prover,
  type Req,
  useFuzzStack,
  withBody,
} from "./support/fuzz-stack.ts";

useFuzzStack();

describe("fuzzed requests never 5xx, always error in shape, and a refused write changes nothing", () => {
  it("any endpoint: random JSON, random text, wrong methods, unknown routes", () =>
    property(
      fc.record({
        method: fc.constantFrom<Req["method"]>("GET", "POST", "DELETE", "PUT", "PATCH"),
        path: fc.oneof(
          fc.constantFrom(
            "/v1/auctions",
            `/v1/auctions/${OPEN_BLOCK}`,
            "/v1/bids",
            `/v1/bids/${OPEN_BLOCK}/${prover.address}`,
            `/v1/provers/${prover.address}`,
            "/v1/admin/deposits",
            "/v1/workers/sessions",
            "/v1/jobs/lease",
            "/v1/jobs/x/heartbeat",
            "/v1/jobs/x/result",
            "/v1/jobs/x/fail",
            `/v1/blocks/${PROVING_BLOCK}`,
            `/v1/blocks/${PROVING_BLOCK}/tree`,
            "/v1/data/auctions",
            "/v1/data/bids",
            "/v1/workers",
            "/v1/info",
          ),
          fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(wellFormed(s))}`),
          fc.string({ maxLength: 20 }).map((s) => `/v1/${encodeURIComponent(wellFormed(s))}`),
        ),
        body: fc.oneof(
          jsonValue(4).map((v) => JSON.stringify(v)),
          nonJson,
          fc.constant(undefined),
        ),
        ct: contentType,
      }),
      async ({ method, path, body: text, ct }) => {
        // GET carries no body here (a GET with a body is not something clients send).
        const payload = method === "GET" ? undefined : text;
        await exercise({ method, url: path, ...withBody(ct, payload) });
      },
      40,
    ));
});
