import { describe, expect, it } from "vitest";
import { DomainError, isProverBoostError, ProverBoostError } from "./errors.ts";

describe("ProverBoostError", () => {
  it("keeps the cause on Error.cause and is not retryable unless told", () => {
    const cause = new Error("socket closed");
    const err = new ProverBoostError("SOMETHING", "it failed", { cause });
    expect(err.cause).toBe(cause);
    expect(err.retryable).toBe(false);
    expect(err.code).toBe("SOMETHING");
    expect(err.message).toBe("it failed");
    expect(new ProverBoostError("X", "y", { retryable: true }).retryable).toBe(true);
    expect("cause" in new ProverBoostError("X", "no cause")).toBe(false);
  });

  it("is the base of DomainError, whose retryable flag follows its code", () => {
    const err = new DomainError("AUCTION_CLOSED", "closed", { blockNumber: 7 });
    expect(err).toBeInstanceOf(ProverBoostError);
    expect(err).toBeInstanceOf(Error);
    expect(isProverBoostError(err)).toBe(true);
    expect(isProverBoostError(new Error("plain"))).toBe(false);
    expect(err.name).toBe("DomainError");
    expect(err.code).toBe("AUCTION_CLOSED");
    expect(err.details).toEqual({ blockNumber: 7 });
    expect(err.retryable).toBe(false);
    expect(new DomainError("UNAVAILABLE", "down").retryable).toBe(true);
    expect(new DomainError("RATE_LIMITED", "slow down").retryable).toBe(true);
    const cause = new Error("inner");
    expect(new DomainError("INTERNAL", "wrapped", undefined, { cause }).cause).toBe(cause);
  });
});
