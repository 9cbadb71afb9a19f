// Error answers as the client reports them: the contract's error shape, and answers that are not
// in it (a proxy's or load balancer's page while the relay restarts), with status and Retry-After.
import { describe, expect, it } from "vitest";
import {
  isRetryableRequestError,
  isRetryableStatus,
  RelayAnswerError,
  RelayClient,
  RelayError,
} from "./client.ts";

const answering = (body: string, status: number, headers: Record<string, string> = {}) =>
  new RelayClient({
    baseUrl: "http://relay.test",
    fetch: async () => new Response(status === 204 ? null : body, { status, headers }),
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

describe("a relay client's success answers not in the contract", () => {
  const job = {
    id: "7:0:0",
    type: "base",
    blockNumber: 7,
    level: 0,
    index: 0,
    inputs: [`0x${"ab".repeat(32)}`],
    proofSystem: "sim",
    children: [],
    leaseExpiresAt: 1_700_000_000_000,
  };

  it("refuses a 200 lease answer with no job, or a job missing its fields, as retryable", async () => {
    for (const body of ["{}", JSON.stringify({ job: { ...job, children: undefined } })]) {
      const err = await answering(body, 200)
        .lease(0)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RelayAnswerError);
      expect(err).toMatchObject({ status: 200, operation: "leaseJob", code: "MALFORMED_ANSWER" });
      expect(isRetryableRequestError(err)).toBe(true);
    }
    const err = await answering("{}", 200)
      .lease(0)
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /leaseJob answered 200, not the contract's answer \(job: /,
    );
  });

  it("refuses a captive portal's HTML page sent as 200, naming it", async () => {
    const err = await answering("<html><body>Sign in to the network</body></html>", 200, {
      "content-type": "text/html",
    })
      .heartbeat("7:0:0")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayAnswerError);
    expect((err as Error).message).toMatch(/heartbeat answered 200, not JSON: <html>/);
  });

  it("refuses a status the operation does not answer with", async () => {
    const err = await answering(JSON.stringify({ job }), 201)
      .lease(0)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 201, operation: "leaseJob" });
    expect((err as Error).message).toMatch(/a status it does not answer with/);
  });

  it("takes a contract answer, and one with fields a newer relay added", async () => {
    expect(await answering(JSON.stringify({ job }), 200).lease(0)).toEqual(job);
    expect(await answering("", 204).lease(0)).toBeNull();
    const newer = JSON.stringify({ leaseExpiresAt: 1_700_000_015_000, hint: "new" });
    expect(await answering(newer, 200).heartbeat("7:0:0")).toMatchObject({
      leaseExpiresAt: 1_700_000_015_000,
    });
  });
});
