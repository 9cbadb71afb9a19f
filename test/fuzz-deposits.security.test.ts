// Property-based fuzzing of the admin deposit endpoint on real Redis and Postgres, through
// `app.inject`: mutated or random bodies under assorted content types, with the admin token,
// variants of it (wrong case, doubled space, extra characters), junk bearer headers or none.
// Every request goes through exercise() (test/support/fuzz-stack.ts): never a 5xx, every error in
// the contract's shape with the status its code maps to, and a refused write changes nothing.
import fc from "fast-check";
import { describe, it } from "vitest";
import { ADMIN_TOKEN } from "./harness.ts";
import { body, contentType } from "./support/fuzz-bodies.ts";
import { bodyText } from "./support/fuzz-mutations.ts";
import { auth, authHeader } from "./support/fuzz-params.ts";
import { exercise, fx, property, useFuzzStack, withBody } from "./support/fuzz-stack.ts";

useFuzzStack();

describe("fuzzed requests never 5xx, always error in shape, and a refused write changes nothing", () => {
  it("POST /v1/admin/deposits, with and without the admin token", () =>
    property(
      fc.record({ auth, body: body(2), ct: contentType }),
      async ({ auth: a, body: spec, ct }) => {
        const req = withBody(ct, bodyText(spec, fx.bases.deposit!));
        await exercise({
          method: "POST",
          url: "/v1/admin/deposits",
          headers: { ...req.headers, ...authHeader(a, ADMIN_TOKEN) },
          payload: req.payload,
        });
      },
      50,
    ));
});
