// The client's request lifetime: its deadline, the client's own signal (an agent stopping), and
// nothing left tied to a request once its answer is read. The fetch here is a stand-in that
// answers or never does, as a relay would.
import { describe, expect, it } from "vitest";
import {
  isRetryableRequestError,
  RETRY_AFTER_MAX_MS,
  RelayClient,
  retryAfterMsOf,
} from "./client.ts";

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fetch that records the signal of each request and answers `{}` unless told to hang. */
/** A heartbeat's answer as the contract has it. */
const heartbeatAnswer = JSON.stringify({ leaseExpiresAt: 1_700_000_000_000 });

function standIn(hang = false) {
  const signals: AbortSignal[] = [];
  const fetch: typeof globalThis.fetch = ((_url: string, init: RequestInit) => {
    const signal = init.signal!;
    signals.push(signal);
    // As fetch does: a signal aborted already fails the request at once.
    if (signal.aborted) return Promise.reject(signal.reason);
    if (!hang) return Promise.resolve(new Response(heartbeatAnswer, { status: 200 }));
    return new Promise((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  }) as typeof globalThis.fetch;
  return { fetch, signals };
}

describe("a relay client's requests", () => {
  it("fails a request unanswered by its deadline with a retryable TimeoutError", async () => {
    const { fetch } = standIn(true);
    const client = new RelayClient({ baseUrl: "http://relay", fetch, timeoutMs: 20 });
    const err = await client.heartbeat("1:0:0").catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "TimeoutError" });
    expect(isRetryableRequestError(err)).toBe(true);
  });

  it("aborts a pending request when the client's signal does, and refuses new ones after", async () => {
    const { fetch } = standIn(true);
    const stop = new AbortController();
    const client = new RelayClient({ baseUrl: "http://relay", fetch, signal: stop.signal });
    const pending = client.heartbeat("1:0:0").catch((e: unknown) => e);
    await pause(5);
    stop.abort(new Error("stopping"));
    expect(await pending).toMatchObject({ message: "stopping" });
    expect(await client.heartbeat("1:0:0").catch((e: unknown) => e)).toMatchObject({
      message: "stopping",
    });
  });

  it("leaves nothing behind once answered: its deadline and the client's signal let go", async () => {
    const { fetch, signals } = standIn();
    const stop = new AbortController();
    const client = new RelayClient({
      baseUrl: "http://relay",
      fetch,
      timeoutMs: 10,
      signal: stop.signal,
    });
    await client.heartbeat("1:0:0");
    await client.heartbeat("1:0:0");
    await pause(40);
    stop.abort(new Error("stopping"));
    expect(signals).toHaveLength(2);
    expect(signals.map((s) => s.aborted)).toEqual([false, false]);
  });
});

describe("a relay client's deadline settings", () => {
  it("refuses a timeoutMs Node's timers cannot hold (it would time every request out at once)", () => {
    for (const bad of [3_000_000_000, Number.NaN, 0, -5]) {
      expect(() => new RelayClient({ baseUrl: "http://relay", timeoutMs: bad })).toThrow(
        RangeError,
      );
    }
  });

  it("with timeoutMs Infinity, sets no deadline: an answer after a while is still read", async () => {
    const { fetch } = standIn();
    const slow: typeof globalThis.fetch = (async (url: string, init: RequestInit) => {
      await pause(50);
      return fetch(url, init);
    }) as typeof globalThis.fetch;
    const client = new RelayClient({ baseUrl: "http://relay", timeoutMs: Infinity, fetch: slow });
    expect(await client.request("GET", "/v1/info")).toMatchObject({ status: 200 });
  });
});

describe("retryAfterMsOf", () => {
  it("reads whole seconds and HTTP dates, at most an hour, and nothing else", () => {
    expect(retryAfterMsOf("2")).toBe(2000);
    expect(retryAfterMsOf(" 0 ")).toBe(0);
    expect(retryAfterMsOf("86400")).toBe(RETRY_AFTER_MAX_MS);
    expect(retryAfterMsOf("9".repeat(400))).toBe(RETRY_AFTER_MAX_MS);
    const inTen = new Date(Date.now() + 10_000).toUTCString();
    const ms = retryAfterMsOf(inTen)!;
    expect(ms).toBeGreaterThan(8_000);
    expect(ms).toBeLessThanOrEqual(10_000);
    expect(retryAfterMsOf(new Date(Date.now() - 10_000).toUTCString())).toBe(0);
    // A lenient date parser reads these as dates long past (retry at once): not Retry-Afters.
    for (const bad of ["1.5", "-1", "0.5", "soon"]) expect(retryAfterMsOf(bad)).toBeUndefined();
    expect(retryAfterMsOf(undefined)).toBeUndefined();
  });
});
