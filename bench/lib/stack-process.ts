// Spawns bench/children/stack.ts (relay + aggregator) in its own process on a fresh Postgres
// schema and Redis prefix, and removes both when stopped.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { Redis } from "ioredis";
import pg from "pg";

export const BENCH_DATABASE_URL =
  process.env.BENCH_DATABASE_URL ??
  process.env.TEST_DATABASE_URL ??
  "postgresql://postgres@127.0.0.1:5432/test";
export const BENCH_REDIS_URL =
  process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface StackProcess {
  url: string;
  schema: string;
  prefix: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startStackProcess(env: Record<string, string>): Promise<StackProcess> {
  const id = randomBytes(4).toString("hex");
  const schema = `bench_${id}`;
  const prefix = `pbbench-${id}`;
  const script = fileURLToPath(new URL("../children/stack.ts", import.meta.url));
  const url = new URL(BENCH_DATABASE_URL);
  url.searchParams.set("schema", schema);
  // BENCH_NODE_ARGS passes extra flags to the relay's node (e.g. "--cpu-prof" to profile it).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script], {
    env: {
      ...process.env,
      DATABASE_URL: url.toString(),
      REDIS_URL: BENCH_REDIS_URL,
      REDIS_PREFIX: prefix,
      LOG_LEVEL: "silent",
      RATE_LIMIT_PER_IP: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const relayUrl = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once("line", (line) => resolve((JSON.parse(line) as { url: string }).url));
    child.once("exit", (code) => reject(new Error(`relay process exited with ${code}`)));
  });
  return {
    url: relayUrl,
    schema,
    prefix,
    pid: child.pid!,
    async stop() {
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      });
      const client = new pg.Client({ connectionString: BENCH_DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
      const redis = new Redis(BENCH_REDIS_URL);
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
    },
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** CPU seconds (user + system) a process has used so far, from /proc; NaN where unavailable. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}
