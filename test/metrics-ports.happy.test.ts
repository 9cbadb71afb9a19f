// METRICS_PORT as the services are really started: the aggregator's service entry point with
// METRICS_PORT in its environment, and the worker agent's command line with --metrics-port, each
// in a process of its own beside a test relay, on real Redis and Postgres. A block is proven and
// paid through them; each endpoint then shows its own side of it.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type Stack, startStack, TEST_DATABASE_URL } from "./harness.ts";
import { exitWithin, type ServiceProcess, startTsService } from "./support/exit.ts";
import { openUnclaimed, waitForStage } from "./support/market-flow.ts";
import { freePort } from "./support/ports.ts";
import { parseProm, type Sample, sumOf } from "./support/prom-text.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const aggregatorScript = path.join(repoRoot, "apps", "aggregator", "src", "server.ts");
const workerScript = path.join(repoRoot, "apps", "worker", "src", "cli.ts");

const BLOCK = 61;
/** Open proving needs no collateral in the test stack: any operator may prove. */
const OPERATOR_KEY = `0x${"e7".padStart(64, "0")}` as const;

function startService(script: string, args: string[], env: Record<string, string>) {
  return startTsService(script, args, env, repoRoot);
}

/** Waits (generously: the process compiles first) until it says its metrics are served. */
function metricsServed(p: ServiceProcess, name: string) {
  return eventually(async () => {
    if (p.child.exitCode !== null) throw new Error(`${name} exited: ${p.stderr()}`);
    return p.logs.some((l) => l.msg === "metrics served");
  }, 120_000);
}

async function scrape(port: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return parseProm(await res.text());
}

async function stop(p: ServiceProcess | undefined, name: string): Promise<void> {
  if (!p) return;
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
  try {
    await exitWithin(p.exited, name, 30_000);
  } catch {
    p.child.kill("SIGKILL");
    await p.exited;
  }
}

describe("the services' own metrics endpoints", { timeout: 240_000 }, () => {
  let stack: Stack;
  let aggregator: ServiceProcess | undefined;
  let worker: ServiceProcess | undefined;
  let aggregatorPort: number;
  let workerPort: number;

  beforeAll(async () => {
    // The stack's own aggregator is not started: the aggregator process does its work.
    stack = await startStack({ aggregator: false });
    const db = new URL(TEST_DATABASE_URL);
    db.searchParams.set("schema", stack.schema!);
    aggregatorPort = await freePort();
    aggregator = startService(aggregatorScript, [], {
      ...stack.env,
      DATABASE_URL: db.toString(),
      METRICS_PORT: String(aggregatorPort),
      METRICS_HOST: "127.0.0.1",
      LOG_LEVEL: "info",
    });
    workerPort = await freePort();
    worker = startService(
      workerScript,
      ["--metrics-port", String(workerPort), "--metrics-host", "127.0.0.1"],
      {
        RELAY_URL: stack.url,
        OPERATOR_KEY,
        WORKERS: "1",
        CAPACITY: "1",
        BACKEND: "sim",
        SIM_DURATIONS: "base=10,merge=10,block_root=10,single_tx_block_root=10,empty_block_root=10",
        WAIT_MS: "1000",
        WORKER_NAME_PREFIX: "metered-cli",
        LOG_LEVEL: "info",
      },
    );
    await metricsServed(aggregator, "the aggregator");
    await metricsServed(worker, "the worker agent");
  });
  afterAll(async () => {
    await stop(worker, "the worker agent");
    // Before the stack's cleanup, so nothing re-creates keys under its prefix.
    await stop(aggregator, "the aggregator");
    await stack?.close();
  });

  it("serve what the aggregator and the worker agent did for a block", async () => {
    await openUnclaimed(stack, BLOCK, { txCount: 2 });
    await waitForStage(stack, BLOCK, "paid", 90_000);
    const jobs = await stack.db.prisma.proofJob.count({ where: { blockNumber: BLOCK } });
    expect(jobs).toBe(3);

    // The aggregator closed the auction and paid the block; its block gauge is read at scrape.
    const agg = await eventually(async () => {
      const s = await scrape(aggregatorPort);
      return sumOf(s, "prover_boost_blocks", { stage: "paid" }) === 1 ? s : null;
    });
    expect(sumOf(agg, "prover_boost_auctions_closed_total", { outcome: "unclaimed" })).toBe(1);
    expect(sumOf(agg, "prover_boost_payouts_total")).toBeGreaterThan(0);
    expect(sumOf(agg, "prover_boost_aggregator_process_cpu_seconds_total")).toBeGreaterThan(0);

    // The worker agent proved the whole tree (the one operator proving).
    const w = await scrape(workerPort);
    expect(sumOf(w, "prover_boost_worker_jobs_total", { event: "proven" })).toBe(jobs);
    expect(sumOf(w, "prover_boost_worker_jobs_total", { event: "proven", job_type: "base" })).toBe(
      2,
    );
    expect(sumOf(w, "prover_boost_worker_backend_info", { backend: "sim" })).toBe(1);
    expect(sumOf(w, "prover_boost_worker_process_cpu_seconds_total")).toBeGreaterThan(0);
  });
});
