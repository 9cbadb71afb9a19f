// Relays as child processes of their own (test/children/relay-child.ts) sharing one Redis and one
// Postgres schema, for the concurrency tests (concurrency.happy, bid-overload.happy): starting and
// stopping them, the environment they share, and calling them over real HTTP. Separate processes,
// not `app.inject`, because these tests are about contention between relays and connection pools.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ADMIN_TOKEN, sequencer, TEST_DATABASE_URL, TEST_REDIS_URL } from "../harness.ts";
import { testDomainEnv } from "./domain.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const childScript = path.join(repoRoot, "test/children/relay-child.ts");

export interface RelayProcess {
  url: string;
  child: ChildProcess;
  stderr: string[];
}

/** The environment of a relay process on the test Postgres `schema` and Redis key `prefix`. */
export function relayProcessEnv(schema: string, prefix: string): Record<string, string> {
  return {
    DATABASE_URL: TEST_DATABASE_URL,
    PB_TEST_SCHEMA: schema,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: prefix,
    SEQUENCERS: sequencer.address,
    ADMIN_TOKEN,
    RATE_LIMIT_PER_IP: "0",
    ...testDomainEnv,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "error",
  };
}

export function startRelay(env: Record<string, string>): Promise<RelayProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", childScript], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const stderr: string[] = [];
  child.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`relay child did not start within 60 s: ${stderr.join("")}`));
    }, 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) return;
      clearTimeout(timer);
      resolve({ url: (JSON.parse(line) as { url: string }).url, child, stderr });
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`relay child exited with ${code}: ${stderr.join("")}`));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function stopRelay(r: RelayProcess): Promise<void> {
  if (r.child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => r.child.once("exit", () => resolve()));
  r.child.kill("SIGTERM");
  const timer = setTimeout(() => r.child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function call(
  base: string,
  method: string,
  route: string,
  body?: unknown,
  bearer?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
