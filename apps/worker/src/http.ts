// The worker agent's HTTP client: undici's connection pool behind the fetch interface the SDK
// takes. Node's built-in fetch wraps the same undici core in WHATWG streams and objects and
// costs a few times the CPU per request; an agent running many workers sends two or more
// requests per job per worker (lease, result, heartbeats), so it uses the pool directly.
import { Agent, request } from "undici";

export interface PooledFetch {
  fetch: typeof fetch;
  /** Closes the pool's connections (when the worker pool has stopped). */
  close(): Promise<void>;
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
    // A Response may not carry a body with these statuses.
    const bodyless = res.statusCode === 204 || res.statusCode === 205 || res.statusCode === 304;
    // Only the header a client acts on is carried over (a 503's or 429's Retry-After).
    const retryAfter = res.headers["retry-after"];
    return new Response(bodyless ? null : text, {
      status: res.statusCode,
      ...(typeof retryAfter === "string" ? { headers: { "retry-after": retryAfter } } : {}),
    });
  };
  return { fetch: pooled as typeof fetch, close: () => agent.close() };
}
