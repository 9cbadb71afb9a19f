// The worker agent's HTTP client: undici's connection pool behind the fetch interface the SDK
// takes. Node's built-in fetch wraps the same undici core in WHATWG streams and objects and
// costs a few times the CPU per request; an agent running many workers sends two or more
// requests per job per worker (lease, result, heartbeats), so it uses the pool directly.
import { Agent, request } from "undici";

export interface PooledFetch {
  fetch: typeof fetch;
  /**
   * Closes the pool's connections (when the worker pool has stopped): at once, abandoning any
   * request still open. The pool has given up on those already (each has its timeout), and a
   * graceful close would wait for their answers from a relay that may never send them.
   */
  close(): Promise<void>;
}

/**
 * The answer pooledFetch gives: the part of a Response the SDK's client reads (status, ok, the
 * body as text or JSON, the Retry-After header a client acts on), over a body already read as a
 * string. A WHATWG Response around it cost a stream and a headers object per request; a body held
 * as a string can be read any number of times, so clone() is the answer itself.
 */
class PooledResponse {
  readonly headers: { get(name: string): string | null };
  constructor(
    readonly status: number,
    private readonly body: string,
    retryAfter: string | null,
  ) {
    this.headers = {
      get: (name) => (name.toLowerCase() === "retry-after" ? retryAfter : null),
    };
  }
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }
  async text(): Promise<string> {
    return this.body;
  }
  async json(): Promise<unknown> {
    return JSON.parse(this.body);
  }
  clone(): this {
    return this;
  }
}

/** A fetch over one keep-alive connection pool per origin (no limit on connections). */
export function pooledFetch(): PooledFetch {
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  const pooled = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    const res = await request(url, {
      dispatcher: agent,
      method: (init?.method ?? "GET") as "GET",
      headers: (init?.headers ?? {}) as Record<string, string>,
      body: (init?.body ?? undefined) as string | undefined,
      signal: init?.signal ?? undefined,
    });
    const text = await res.body.text();
    const retryAfter = res.headers["retry-after"];
    return new PooledResponse(
      res.statusCode,
      text,
      typeof retryAfter === "string" ? retryAfter : null,
    ) as unknown as Response;
  };
  return { fetch: pooled as typeof fetch, close: () => agent.destroy() };
}
