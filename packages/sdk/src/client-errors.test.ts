// Error answers as the client reports them: the contract's error shape, and answers that are not
// in it (a proxy's or load balancer's page while the relay restarts), with status and Retry-After.
import { describe, expect, it } from "vitest";
import { isRetryableRequestError, isRetryableStatus, RelayClient, RelayError } from "./client.ts";

const answering = (body: string, status: number, headers: Record<string, string> = {}) =>
  new RelayClient({
    baseUrl: "http://relay.test",
    fetch: async () => new Response(body, { status, headers }),
  });

describe("a relay client's error answers", () => {
  it("turns a proxy's HTML 503 into a retryable RelayError with its status and Retry-After", async () => {
    const client = answering(
      "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
      503,
      { "content-type": "text/html", "retry-after": "7" },
    );
    const err = await client.lease(0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayError);
    expect(err).toMatchObject({ status: 503, code: "UNKNOWN", retryAfterMs: 7000 });
    expect((err as RelayError).message).toContain("503 Service Temporarily Unavailable");
    expect(isRetryableRequestError(err)).toBe(true);
  });

  it("turns a proxy's empty or non-JSON 502 and 504 into retryable RelayErrors", async () => {
    for (const status of [502, 504]) {
      const err = await answering("Bad Gateway", status)
        .info()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RelayError);
      expect(err).toMatchObject({ status, code: "UNKNOWN" });
      expect(isRetryableRequestError(err)).toBe(true);
    }
    const empty = await answering("", 502)
      .info()
      .catch((e: unknown) => e);
    expect(empty).toMatchObject({ status: 502, code: "UNKNOWN" });
  });

  it("keeps the contract's code, message and request id of a JSON error answer", async () => {
    const body = JSON.stringify({
      error: { code: "LEASE_LOST", message: "not your lease", requestId: "req-1" },
    });
    const err = await answering(body, 409, { "content-type": "application/json" })
      .heartbeat("1:0:0")
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 409, code: "LEASE_LOST", requestId: "req-1" });
    expect(isRetryableRequestError(err)).toBe(false);
  });

  it("retries rate limits, unavailability and gateway errors as they are, not a relay's 500", () => {
    expect([408, 429, 502, 503, 504].map(isRetryableStatus)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect([400, 401, 409, 422, 500].map(isRetryableStatus)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});
