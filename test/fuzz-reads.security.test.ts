// Property-based fuzzing of the relay's reads on real Redis and Postgres, through `app.inject`:
// auctions, blocks, trees and provers by fuzzed path parameters (numbers past int4 and int8,
// signs, exponents, unicode, malformed percent-encodings, addresses in every casing), and the
// data and worker lists with fuzzed query strings (limits, cursors, filters).
// Every request goes through exercise() (test/support/fuzz-stack.ts): never a 5xx, every error in
// the contract's shape with the status its code maps to, and a refused write changes nothing.
import fc from "fast-check";
import { describe, it } from "vitest";
import { addressParam, numberParam, pathPiece, query, withQuery } from "./support/fuzz-params.ts";
import { exercise, property, useFuzzStack } from "./support/fuzz-stack.ts";

useFuzzStack();

describe("fuzzed requests never 5xx, always error in shape, and a refused write changes nothing", () => {
  it("GET /v1/auctions/:n, /v1/blocks/:n, /v1/blocks/:n/tree, /v1/provers/:a", () =>
    property(
      fc.oneof(
        numberParam.map((n) => `/v1/auctions/${pathPiece(n)}`),
        numberParam.map((n) => `/v1/blocks/${pathPiece(n)}`),
        numberParam.map((n) => `/v1/blocks/${pathPiece(n)}/tree`),
        addressParam.map((a) => `/v1/provers/${pathPiece(a)}`),
      ),
      async (url) => {
        await exercise({ method: "GET", url, headers: {} });
      },
      80,
    ));

  it("GET /v1/data/auctions|bids|payouts|penalties, /v1/workers, /v1/info", () =>
    property(
      fc.record({
        path: fc.constantFrom(
          "/v1/data/auctions",
          "/v1/data/bids",
          "/v1/data/payouts",
          "/v1/data/penalties",
          "/v1/workers",
          "/v1/info",
        ),
        query,
      }),
      async ({ path, query: q }) => {
        await exercise({ method: "GET", url: withQuery(path, q), headers: {} });
      },
      100,
    ));
});
