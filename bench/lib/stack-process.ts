// Spawns bench/children/stack.ts on a fresh Postgres schema and Redis prefix: the relay and the
// aggregator in one process, or each in its own as a deployment runs them (`npm run relay`,
// `npm run aggregator`), or the relay alone; removes schema and prefix when stopped.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { Redis } from "ioredis";
import pg from "pg";

/** The benchmark deployment's signing domain (four fields, as every deployment binds its own). */
export const BENCH_DOMAIN = {
  name: "Aztec Rollup",
  version: "1",
  chainId: 31337,
  verifyingContract: "0x00000000000000000000000000000000000000B0",
} as const;

export const BENCH_DATABASE_URL =
  process.env.BENCH_DATABASE_URL ??
  process.env.TEST_DATABASE_URL ??
  "postgresql://postgres@127.0.0.1:5432/test";
export const BENCH_REDIS_URL =
  process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface StackProcess {
  /** The first relay's address. */
  url: string;
  /** Every relay's address, the first's first. */
  urls: string[];
  schema: string;
  prefix: string;
  /** The first relay's process id. */
  pid: number;
  /** Every relay's process id, the first's first. */
  pids: number[];
  /** The aggregator's process id when it runs in its own process. */
  aggregatorPid?: number;
  stop(): Promise<void>;
}

/** Where the aggregator runs: beside the relay, in its own process, or not at all. */
export type AggregatorPlacement = "with-relay" | "own-process" | "none";

export async function startStackProcess(
  env: Record<string, string>,
  aggregator: AggregatorPlacement = "with-relay",
  /** Relay processes on the same database and Redis prefix (several relays behind one fleet). */
  relays = 1,
): Promise<StackProcess> {
  const id = randomBytes(4).toString("hex");
  const schema = `bench_${id}`;
  const prefix = `pbbench-${id}`;
  const script = fileURLToPath(new URL("../children/stack.ts", import.meta.url));
  const url = new URL(BENCH_DATABASE_URL);
  url.searchParams.set("schema", schema);
  const start = async (role: string, nodeArgs: string[]) => {
    const child: ChildProcess = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script], {
      env: {
        ...process.env,
        DATABASE_URL: url.toString(),
        REDIS_URL: BENCH_REDIS_URL,
        REDIS_PREFIX: prefix,
        LOG_LEVEL: "silent",
        RATE_LIMIT_PER_IP: "0",
        CHAIN_ID: String(BENCH_DOMAIN.chainId),
        VERIFYING_CONTRACT: BENCH_DOMAIN.verifyingContract,
        ...env,
        BENCH_ROLE: role,
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const first = await new Promise<{ url?: string }>((resolve, reject) => {
      // The process's first JSON line says it is up. Anything else on its stdout (V8's traces
      // under BENCH_NODE_ARGS="--log-deopt" or "--trace-opt") is skipped, and the stream is read
      // to its end, so such a process never blocks on a full pipe.
      const lines = createInterface({ input: child.stdout! });
      let up = false;
      lines.on("line", (line) => {
        if (up || !line.startsWith("{")) return;
        try {
          const parsed = JSON.parse(line) as { url?: string };
          up = true;
          resolve(parsed);
        } catch {
          // not the process's own line
        }
      });
      child.once("exit", (code) => reject(new Error(`${role} process exited with ${code}`)));
    });
    return { child, url: first.url };
  };
  // BENCH_NODE_ARGS passes extra flags to the relay's node (e.g. "--cpu-prof" to profile it),
  // BENCH_AGGREGATOR_NODE_ARGS to the aggregator's when it runs in its own process.
  const args = (name: string) => (process.env[name] ?? "").split(" ").filter(Boolean);
  const relay = await start(
    aggregator === "with-relay" ? "both" : "relay",
    args("BENCH_NODE_ARGS"),
  );
  // More relays after the first, which has brought the schema up to date (never with the
  // aggregator: that one runs once, beside the first relay or in its own process).
  const more: { child: ChildProcess; url?: string }[] = [];
  for (let i = 1; i < relays; i++) more.push(await start("relay", args("BENCH_NODE_ARGS")));
  // Started after the relays, so the schema is up to date.
  const agg =
    aggregator === "own-process"
      ? await start("aggregator", args("BENCH_AGGREGATOR_NODE_ARGS"))
      : null;
  const children = [relay.child, ...more.map((r) => r.child), ...(agg ? [agg.child] : [])];
  return {
    url: relay.url!,
    urls: [relay.url!, ...more.map((r) => r.url!)],
    schema,
    prefix,
    pid: relay.child.pid!,
    pids: [relay.child.pid!, ...more.map((r) => r.child.pid!)],
    ...(agg ? { aggregatorPid: agg.child.pid! } : {}),
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once("exit", () => resolve());
              child.kill("SIGTERM");
              setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
            }),
        ),
      );
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

/**
 * CPU seconds (user + system) used so far by each process whose command name is `comm` (e.g.
 * "postgres", "redis-server": the services beside the stack, which run several processes), from
 * /proc; null where /proc is unavailable.
 */
export function cpuOfCommand(comm: string): Map<string, number> | null {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  const out = new Map<string, number>();
  for (const pid of pids) {
    const stat = procStat(pid);
    if (stat?.name === comm) out.set(pid, stat.cpuSeconds);
  }
  return out;
}

/**
 * CPU seconds the processes named `comm` used since `before` (from cpuOfCommand): processes
 * started since count in full; the last moments of those that ended since are not seen.
 */
export function cpuOfCommandSince(comm: string, before: Map<string, number> | null): number {
  const now = cpuOfCommand(comm);
  // None visible: the service runs elsewhere (another host, a container), so nothing to say.
  if (!now || !before || now.size === 0) return Number.NaN;
  let total = 0;
  for (const [pid, seconds] of now) total += Math.max(0, seconds - (before.get(pid) ?? 0));
  return total;
}

/**
 * Busy and total CPU seconds of the whole machine so far (all cores; busy = everything but idle
 * and I/O wait), from /proc/stat; null where unavailable.
 */
export function machineCpu(): { busy: number; total: number } | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const t = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const total = t.slice(0, 8).reduce((a, b) => a + b, 0) / 100;
    return { busy: total - (t[3]! + t[4]!) / 100, total };
  } catch {
    return null;
  }
}

/** A process's command name and CPU seconds (user + system) so far; null if it is gone. */
function procStat(pid: number | string): { name: string; cpuSeconds: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100,
    };
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc; NaN where unavailable. */
export function cpuSecondsOf(pid: number): number {
  return procStat(pid)?.cpuSeconds ?? Number.NaN;
}

/**
 * Read and write system calls a process has made so far (every socket read and write among
 * them), from /proc/<pid>/io; null where unavailable.
 */
export function syscallsOf(pid: number): { reads: number; writes: number } | null {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    const reads = /^syscr: (\d+)$/m.exec(io);
    const writes = /^syscw: (\d+)$/m.exec(io);
    if (!reads || !writes) return null;
    return { reads: Number(reads[1]), writes: Number(writes[1]) };
  } catch {
    return null;
  }
}
