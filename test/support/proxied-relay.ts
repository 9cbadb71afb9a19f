// A relay whose Redis and Postgres links both pass through fault proxies (support/fault-proxy.ts),
// for outage tests: stall or cut either link, then restore it. Its own Postgres schema and Redis
// key prefix are removed on close.
import { randomBytes } from "node:crypto";
import { parseEnv, relayEnv } from "@prover-boost/config";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { createRelay, type Relay } from "@prover-boost/relay";
import { RelayClient } from "@prover-boost/sdk";
import { Redis } from "ioredis";
import pg from "pg";
import { ADMIN_TOKEN, sequencer, TEST_DATABASE_URL, TEST_REDIS_URL } from "../harness.ts";
import { testDomainEnv } from "./domain.ts";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";

export interface ProxiedRelay {
  url: string;
  relay: Relay;
  redisLink: FaultProxy;
  databaseLink: FaultProxy;
  client: RelayClient;
  admin: RelayClient;
  prefix: string;
  schema: string;
  close(): Promise<void>;
}

export async function startProxiedRelay(env: Record<string, string> = {}): Promise<ProxiedRelay> {
  const id = randomBytes(5).toString("hex");
  const prefix = `pbtest-${id}`;
  const schema = `t_outage_${id}`;
  const redisLink = await startFaultProxy(TEST_REDIS_URL);
  const databaseLink = await startFaultProxy(TEST_DATABASE_URL);
  const relay = await createRelay(
    parseEnv(relayEnv, {
      REDIS_URL: redisLink.url,
      DATABASE_URL: databaseLink.url,
      REDIS_PREFIX: prefix,
      SEQUENCERS: sequencer.address,
      ADMIN_TOKEN,
      LEASE_MS: "2000",
      MIN_PROVING_WINDOW_MS: "0",
      OPEN_PROVING_MIN_COLLATERAL: "0",
      INVALID_PROOF_PENALTY_WEI: "0",
      ...testDomainEnv,
      ...env,
    }),
    { schema },
  );
  await relay.app.listen({ port: 0, host: "127.0.0.1" });
  const address = relay.app.server.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  return {
    url,
    relay,
    redisLink,
    databaseLink,
    client: new RelayClient({ baseUrl: url }),
    admin: new RelayClient({ baseUrl: url, adminToken: ADMIN_TOKEN }),
    prefix,
    schema,
    async close() {
      redisLink.restore();
      databaseLink.restore();
      await relay.close();
      await redisLink.close();
      await databaseLink.close();
      const redis = new Redis(TEST_REDIS_URL);
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/**
 * One HTTP request with a generous client-side deadline: a relay that hangs fails the test with
 * a clear message instead of stalling it.
 */
export async function ask(
  url: string,
  init: RequestInit & { json?: unknown; token?: string } = {},
  deadlineMs = 30_000,
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (init.json !== undefined) headers["content-type"] = "application/json";
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  let res: Response;
  try {
    res = await fetch(url, {
      ...init,
      headers: { ...headers, ...(init.headers as Record<string, string> | undefined) },
      ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
      signal: AbortSignal.timeout(deadlineMs),
    });
  } catch (err) {
    throw new Error(`${init.method ?? "GET"} ${url}: no answer within ${deadlineMs} ms (${err})`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body };
}
