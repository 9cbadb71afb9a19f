// The worker agent's metrics on its own endpoint, fed by a real pool proving a block through a
// real relay and aggregator: every job of the tree leased and proven once, proof times per job
// type, lease answers, heartbeats on a job that outlives a third of the lease, and the backend.
import { serveMetrics } from "@prover-boost/config";
import { simBackend, startWorkers, workerMetrics } from "@prover-boost/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "./harness.ts";
import { openUnclaimed, waitForStage } from "./support/market-flow.ts";
import { parseProm, sumOf } from "./support/prom-text.ts";

const BLOCK = 51;
/** Open proving needs no collateral in the test stack: any operator may prove. */
const OPERATOR_KEY = `0x${"d5".padStart(64, "0")}` as const;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ backend: "postgres" });
});
afterAll(async () => stack?.close());

describe("the worker agent's metrics", () => {
  it("count the jobs it leased and proved, its lease answers and heartbeats", async () => {
    const metrics = workerMetrics("sim");
    const server = await serveMetrics(metrics.registry, {
      port: 0,
      host: "127.0.0.1",
      ephemeral: true,
    });
    // LEASE_MS is 2000 in the test stack: a heartbeat goes out every ~666 ms of a lease, so the
    // base jobs, which take longer, each send at least one before their proof.
    const pool = await startWorkers({
      relayUrl: stack.url,
      operatorKey: OPERATOR_KEY,
      workers: 2,
      waitMs: 500,
      namePrefix: "metered",
      backend: simBackend({
        durationsMs: {
          base: 1200,
          merge: 10,
          block_root: 10,
          single_tx_block_root: 10,
          empty_block_root: 10,
        },
      }),
      onEvent: metrics.onEvent,
    });
    try {
      await openUnclaimed(stack, BLOCK, { txCount: 2 });
      await waitForStage(stack, BLOCK, "paid", 60_000);
      const jobs = await stack.db.prisma.proofJob.count({ where: { blockNumber: BLOCK } });
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(res.status).toBe(200);
      const s = parseProm(await res.text());
      expect(sumOf(s, "prover_boost_worker_jobs_total", { event: "leased" })).toBe(jobs);
      expect(sumOf(s, "prover_boost_worker_jobs_total", { event: "proven" })).toBe(jobs);
      expect(
        sumOf(s, "prover_boost_worker_jobs_total", { event: "proven", job_type: "base" }),
      ).toBe(2);
      expect(sumOf(s, "prover_boost_worker_proof_seconds_count")).toBe(jobs);
      expect(
        sumOf(s, "prover_boost_worker_proof_seconds_sum", { job_type: "base" }),
      ).toBeGreaterThanOrEqual(2 * 1.2);
      // Every job came either from a lease request or in the answer to the previous result.
      expect(
        sumOf(s, "prover_boost_worker_lease_answer_seconds_count", { outcome: "leased" }) +
          sumOf(s, "prover_boost_worker_jobs_leased_with_result_total"),
      ).toBe(jobs);
      expect(
        sumOf(s, "prover_boost_worker_heartbeats_total", { outcome: "ok" }),
      ).toBeGreaterThanOrEqual(2);
      expect(sumOf(s, "prover_boost_worker_backend_info", { backend: "sim" })).toBe(1);
      expect(sumOf(s, "prover_boost_worker_process_cpu_seconds_total")).toBeGreaterThan(0);
    } finally {
      await pool.stop({ graceMs: 1000 });
      await server.close();
    }
  });
});
