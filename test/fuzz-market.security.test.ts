// Property-based fuzzing of the market's signed writes on real Redis and Postgres, through
// `app.inject`: opening auctions, submitting bids and cancelling them. Bodies start from valid
// signed fixtures and get one field (sometimes two or three) mutated, are signed again when they
// still can be (to get past signatures), or are random JSON, text, truncated or absent, under
// assorted content types; a cancellation's path parameters are fuzzed too.
// Every request goes through exercise() (test/support/fuzz-stack.ts): never a 5xx, every error in
// the contract's shape with the status its code maps to, and a refused write changes nothing.
import fc from "fast-check";
import { describe, it } from "vitest";
import { body, contentType } from "./support/fuzz-bodies.ts";
import { signedBodyText } from "./support/fuzz-mutations.ts";
import { addressParam, numberParam, pathPiece } from "./support/fuzz-params.ts";
import {
  exercise,
  fx,
  property,
  resignAuction,
  resignBid,
  resignCancel,
  useFuzzStack,
  withBody,
} from "./support/fuzz-stack.ts";

useFuzzStack();

describe("fuzzed requests never 5xx, always error in shape, and a refused write changes nothing", () => {
  it("POST /v1/auctions", () =>
    property(
      fc.record({ body: body(6), ct: contentType }),
      async ({ body: spec, ct }) => {
        await exercise({
          method: "POST",
          url: "/v1/auctions",
          ...withBody(ct, await signedBodyText(spec, fx.bases.auction!, resignAuction)),
        });
      },
      50,
    ));

  it("POST /v1/bids", () =>
    property(
      fc.record({ body: body(7), ct: contentType }),
      async ({ body: spec, ct }) => {
        await exercise({
          method: "POST",
          url: "/v1/bids",
          ...withBody(ct, await signedBodyText(spec, fx.bases.bid!, resignBid)),
        });
      },
      70,
    ));

  it("DELETE /v1/bids/:n/:prover", () =>
    property(
      fc.record({
        block: fc.option(numberParam, { freq: 3 }),
        who: fc.option(addressParam, { freq: 3 }),
        body: body(3),
        ct: contentType,
      }),
      async ({ block, who, body: spec, ct }) => {
        // The body's base cancellation also gives the path, unless the path is fuzzed.
        const b = fx.cancelBases["base" in spec ? spec.base % fx.cancelBases.length : 0]!;
        const n = block ? pathPiece(block) : String(b.block);
        const p = who ? pathPiece(who) : b.prover;
        const text = await signedBodyText(
          spec,
          fx.cancelBases.map((c) => c.body),
          resignCancel(block ? block.value : String(b.block), who ? who.value : b.prover),
        );
        await exercise({ method: "DELETE", url: `/v1/bids/${n}/${p}`, ...withBody(ct, text) });
      },
      40,
    ));
});
