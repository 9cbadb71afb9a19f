// The worker classifies relay errors by the contract's code; the HTTP status only decides for an
// answer without a known code (a newer relay, a proxy in between).
import { errorStatus } from "@prover-boost/contract";
import { type ErrorCode, RelayError } from "@prover-boost/sdk";
import { describe, expect, it } from "vitest";
import { classifyRelayError } from "./errors.ts";

const refusal = (code: string, status: number) => new RelayError(status, code, "refused");

describe("classifyRelayError", () => {
  it("reads the code, whatever the status says", () => {
    expect(classifyRelayError(refusal("LEASE_LOST", 500))).toBe("lease_lost");
    expect(classifyRelayError(refusal("SESSION_EXPIRED", 400))).toBe("unauthorized");
    expect(classifyRelayError(refusal("INVALID_PROOF", 409))).toBe("rejected");
    expect(classifyRelayError(refusal("UNAVAILABLE", 400))).toBe("transient");
  });

  it("puts each code of the contract where its status family belongs", () => {
    const family = (status: number) =>
      status === 401
        ? "unauthorized"
        : status === 404 || status === 409
          ? "lease_lost"
          : status === 422
            ? "rejected"
            : status === 408 || status === 429 || status >= 500
              ? "transient"
              : "client_error";
    for (const [code, status] of Object.entries(errorStatus) as [ErrorCode, number][]) {
      expect(classifyRelayError(refusal(code, status)), code).toBe(family(status));
    }
  });

  it("falls back to the status for a code it does not know", () => {
    const unknown = refusal("SOMETHING_NEW", 503);
    expect(unknown.code).toBe("UNKNOWN");
    expect(unknown.rawCode).toBe("SOMETHING_NEW");
    expect(classifyRelayError(unknown)).toBe("transient");
    expect(classifyRelayError(refusal("SOMETHING_NEW", 401))).toBe("unauthorized");
    expect(classifyRelayError(refusal("SOMETHING_NEW", 409))).toBe("client_error");
    expect(classifyRelayError(new TypeError("fetch failed"))).toBe("transient");
  });
});
