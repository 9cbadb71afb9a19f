// The contract's own rules: every code has a status, every operation is well formed, and the
// JSON -> typed-data conversions read the wire's strings and the relay's parsed values alike.
import { errorCodes } from "@prover-boost/core";
import { describe, expect, it } from "vitest";
import { errorBodySchema, errorStatus, isErrorCode } from "./errors.ts";
import { auctionMessage, quoteMessage } from "./messages.ts";
import { errorsOf, operations } from "./operations.ts";
import { auctionTerms, cursorPattern, quoteBody } from "./schemas.ts";

describe("error codes and statuses", () => {
  it("maps every code of the domain, and nothing else, to a 4xx or 5xx status", () => {
    expect(Object.keys(errorStatus).sort()).toEqual([...errorCodes].sort());
    for (const status of Object.values(errorStatus)) {
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });

  it("tells its codes from unknown ones", () => {
    expect(isErrorCode("LEASE_LOST")).toBe(true);
    expect(isErrorCode("SOMETHING_NEW")).toBe(false);
    expect(isErrorCode("toString")).toBe(false);
  });

  it("accepts the error body with a known code only", () => {
    const body = { error: { code: "BLOCK_NOT_FOUND", message: "no block 1", requestId: "r" } };
    expect(errorBodySchema.safeParse(body).success).toBe(true);
    const unknown = { error: { ...body.error, code: "NOPE" } };
    expect(errorBodySchema.safeParse(unknown).success).toBe(false);
  });
});

describe("operations", () => {
  it("have unique ids and paths, their key as id, and success statuses below 300", () => {
    const entries = Object.entries(operations);
    expect(new Set(entries.map(([, o]) => `${o.method} ${o.path}`)).size).toBe(entries.length);
    for (const [key, o] of entries) {
      expect(o.operationId).toBe(key);
      for (const status of Object.keys(o.responses)) expect(Number(status)).toBeLessThan(300);
    }
  });

  it("declare the errors every operation can send, and the body errors where there is a body", () => {
    expect(errorsOf(operations.getInfo)).toEqual(
      expect.arrayContaining(["VALIDATION_FAILED", "RATE_LIMITED", "INTERNAL", "UNAVAILABLE"]),
    );
    expect(errorsOf(operations.getInfo)).not.toContain("INVALID_JSON");
    expect(errorsOf(operations.submitBid)).toContain("INVALID_JSON");
    expect(errorsOf(operations.submitBid)).toContain("INSUFFICIENT_COLLATERAL");
    // A job call on an id of no job is 404, on someone else's (or a lapsed) lease 409.
    for (const o of [operations.heartbeat, operations.submitResult, operations.failJob]) {
      expect(errorsOf(o)).toEqual(expect.arrayContaining(["JOB_NOT_FOUND", "LEASE_LOST"]));
    }
  });
});

describe("typed-data conversions", () => {
  const json = {
    blockNumber: 7,
    slot: 3,
    txCount: 1,
    txsHash: `0x${"ab".repeat(32)}` as const,
    blockReward: "1000000000000000000",
    minBond: "1000",
    maxFeeBps: 3000,
    biddingClosesAt: 1_700_000_000_000,
    proofDeadline: 1_700_000_100_000,
  };

  it("sign the same auction from the wire's JSON and from the relay's parsed request", () => {
    const parsed = auctionTerms.parse(json);
    expect(typeof parsed.blockReward).toBe("bigint");
    expect(auctionMessage(parsed)).toEqual(auctionMessage(json));
    expect(auctionMessage(json).blockReward).toBe(10n ** 18n);
  });

  it("sign the same quote from both", () => {
    const quote = {
      epochToProve: 7,
      validUntilSlot: 9,
      bondAmount: "5000",
      prover: "0x00000000000000000000000000000000000000aa" as const,
      basisPointFee: 100,
    };
    const parsed = quoteBody.parse(quote);
    expect(quoteMessage({ ...parsed, prover: quote.prover })).toEqual(quoteMessage(quote));
  });
});

describe("cursors", () => {
  it("are <sort key>_<id> with a bounded key", () => {
    expect(cursorPattern.test("1700000000000_0xabc")).toBe(true);
    expect(cursorPattern.test("502_502")).toBe(true);
    expect(cursorPattern.test("2147483648")).toBe(false);
    expect(cursorPattern.test("99999999999999999999_x")).toBe(false);
  });
});
