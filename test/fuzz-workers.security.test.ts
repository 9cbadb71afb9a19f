// Property-based fuzzing of the worker endpoints on real Redis and Postgres, through
// `app.inject`: signing in, leasing, and a job's heartbeat, result and fail. Bodies are mutated
// (sign-ins signed again when they still can be), random or absent; bearer tokens are the
// holder's, variants of it, junk or none; job ids are the holder's own job, another worker's job,
// or junk. A 422 INVALID_PROOF may only record its penalty and requeue that job.
// Every request goes through exercise() (test/support/fuzz-stack.ts): never a 5xx, every error in
// the contract's shape with the status its code maps to, and a refused write changes nothing.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { body, contentType } from "./support/fuzz-bodies.ts";
import { bodyText, signedBodyText } from "./support/fuzz-mutations.ts";
import { auth, authHeader, jobId, type Param, pathPiece } from "./support/fuzz-params.ts";
import {
  ensureMainLease,
  exercise,
  fx,
  holds,
  PROVING_BLOCK,
  proofOf,
  property,
  resignSession,
  useFuzzStack,
  withBody,
} from "./support/fuzz-stack.ts";

useFuzzStack();

describe("fuzzed requests never 5xx, always error in shape, and a refused write changes nothing", () => {
  it("POST /v1/workers/sessions", () =>
    property(
      fc.record({ body: body(3), ct: contentType }),
      async ({ body: spec, ct }) => {
        await exercise({
          method: "POST",
          url: "/v1/workers/sessions",
          ...withBody(ct, await signedBodyText(spec, fx.bases.session!, resignSession)),
        });
      },
      40,
    ));

  it("POST /v1/jobs/lease (a worker at capacity, junk tokens, no token)", () =>
    property(
      fc.record({ auth, body: body(3), ct: contentType }),
      async ({ auth: a, body: spec, ct }) => {
        // With a valid token this worker is at capacity, so a lease is refused at once (409)
        // whatever waitMs says, instead of long-polling.
        expect(await holds(fx.fullWorker, fx.fullJob)).toBe(true);
        const req = withBody(ct, bodyText(spec, fx.bases.lease!));
        await exercise({
          method: "POST",
          url: "/v1/jobs/lease",
          headers: { ...req.headers, ...authHeader(a, fx.fullWorker.token) },
          payload: req.payload,
        });
      },
      30,
    ));

  for (const action of ["heartbeat", "result", "fail"] as const) {
    it(`POST /v1/jobs/:id/${action} (the holder's token, junk tokens, someone else's job)`, () =>
      property(
        fc.record({ auth, id: jobId, body: body(2), ct: contentType }),
        async ({ auth: a, id, body: spec, ct }) => {
          await ensureMainLease();
          const mine = fx.mainJob;
          const target =
            id.t === "mine"
              ? (mine?.id ?? `${PROVING_BLOCK}-0-0`)
              : id.t === "other"
                ? fx.fullJob.id
                : null;
          const path = target ?? pathPiece((id as { param: Param }).param);
          const actionBases =
            action === "result"
              ? [
                  { proof: mine ? proofOf(mine) : `0x${"00".repeat(32)}` },
                  { proof: `0x${"00".repeat(32)}` },
                ]
              : fx.bases[action]!;
          const req = withBody(ct, bodyText(spec, actionBases));
          await exercise({
            method: "POST",
            url: `/v1/jobs/${path}/${action}`,
            headers: { ...req.headers, ...authHeader(a, fx.mainWorker.token) },
            payload: req.payload,
            jobId: target ?? undefined,
          });
        },
        30,
      ));
  }
});
