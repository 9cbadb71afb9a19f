// The worker agent's metrics (prom-client), fed by the pool's events and served on
// --metrics-port (METRICS_PORT; off by default, as several agents may share a host): jobs by what
// became of them and by type, proof time per type, heartbeats, how long lease requests took to be
// answered, relay errors, and the backend in use.
// A job leased in the answer to a result counts as leased but made no lease request of its own.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { WorkerEvent } from "./types.ts";

export interface WorkerMetrics {
  registry: Registry;
  /** Pass every pool event (startWorkers' onEvent). */
  onEvent(e: WorkerEvent): void;
}

export function workerMetrics(backend: string): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry, prefix: "prover_boost_worker_" });
  const jobs = new Counter({
    name: "prover_boost_worker_jobs_total",
    help: "Jobs by what became of them (leased, proven, rejected, lost, failed, handed_back) and job type",
    labelNames: ["event", "job_type"],
    registers,
  });
  const proofTime = new Histogram({
    name: "prover_boost_worker_proof_seconds",
    help: "From a lease to the relay accepting its proof, by job type, as this worker saw it",
    labelNames: ["job_type"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers,
  });
  const heartbeats = new Counter({
    name: "prover_boost_worker_heartbeats_total",
    help: "Lease heartbeats sent, by outcome (ok, error)",
    labelNames: ["outcome"],
    registers,
  });
  const leaseAnswer = new Histogram({
    name: "prover_boost_worker_lease_answer_seconds",
    help: "How long a lease request (a long poll) took to be answered, by outcome (leased, empty)",
    labelNames: ["outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const withResult = new Counter({
    name: "prover_boost_worker_jobs_leased_with_result_total",
    help: "Jobs that came in the answer to the previous job's result, without a lease request of their own",
    registers,
  });
  const relayErrors = new Counter({
    name: "prover_boost_worker_relay_errors_total",
    help: "Relay calls that failed and were retried, by operation",
    labelNames: ["op"],
    registers,
  });
  new Gauge({
    name: "prover_boost_worker_backend_info",
    help: "The proof backend this agent runs (always 1)",
    labelNames: ["backend"],
    registers,
  }).set({ backend }, 1);
  for (const outcome of ["ok", "error"]) heartbeats.inc({ outcome }, 0);
  return {
    registry,
    onEvent(e) {
      switch (e.type) {
        case "leased":
          jobs.inc({ event: "leased", job_type: e.job.type });
          if (e.via === "result") withResult.inc();
          break;
        case "rejected":
        case "lost":
          jobs.inc({ event: e.type, job_type: e.job.type });
          break;
        case "proven":
          jobs.inc({ event: "proven", job_type: e.job.type });
          proofTime.observe({ job_type: e.job.type }, e.ms / 1000);
          break;
        case "failed":
          jobs.inc({ event: e.retryable ? "handed_back" : "failed", job_type: e.job.type });
          break;
        case "heartbeat":
          heartbeats.inc({ outcome: e.ok ? "ok" : "error" });
          break;
        case "lease_answered":
          leaseAnswer.observe({ outcome: e.leased ? "leased" : "empty" }, e.ms / 1000);
          break;
        case "relay_error":
          relayErrors.inc({ op: e.op });
          break;
      }
    },
  };
}
