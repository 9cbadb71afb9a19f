// The load generator of bench:tree: simulated workers (apps/worker's startWorkers) leasing from
// the relay, either in this process or sharded over child processes (bench/children/fleet.ts),
// so that one busy event loop does not become what the benchmark measures. Each shard audits its
// own leases (LeaseAudit) and reports its leases, lease answers, lost leases, event-loop delay
// and CPU; the parent merges them.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { JobType } from "@prover-boost/core";
import {
  type ProofBackend,
  poolBackend,
  pooledFetch,
  simBackend,
  startWorkers,
  type WorkerPool,
  type WorkerStats,
} from "@prover-boost/worker";
import { type LeaseAnswer, LeaseAudit, type LostLease } from "./lease-audit.ts";

export interface FleetOptions {
  /** The relays the workers lease from: groups of workers take them in turn. */
  relayUrls: string[];
  operatorKey: `0x${string}`;
  workers: number;
  namePrefix: string;
  durations: Record<JobType, number>;
  waitMs: number;
  /** "sim": timers; "honk": real proofs on a pool of `proveThreads` proving threads. */
  proofs: "sim" | "honk";
  proveThreads: number;
}

export interface FleetReport {
  leases: { job: string; at: number; worker: string }[];
  /** Every lease request that returned a job: when it went out and when its answer came. */
  answers: LeaseAnswer[];
  lost: LostLease[];
  shed: number;
  stats: WorkerStats;
  /** Event-loop delay, ms; merged over shards: the worst shard's figure. */
  loop: { p50: number; p99: number; max: number };
  /** CPU (user + system) of the generator's processes since mark(), ms, summed over shards. */
  cpuMs: number;
  shards: number;
}

export interface Fleet {
  /** Starts the CPU count (and discards the event-loop delay seen so far). */
  mark(): Promise<void>;
  report(): Promise<FleetReport>;
  stop(): Promise<void>;
}

/** Workers that sign in at a time. */
const SIGN_IN_GROUP = 50;

function sumStats(all: readonly WorkerStats[]): WorkerStats {
  const sum = { leased: 0, proven: 0, failed: 0, rejected: 0, lost: 0 };
  for (const s of all) for (const k of Object.keys(sum) as (keyof WorkerStats)[]) sum[k] += s[k];
  return sum;
}

/** The workers in this process; resolves once they have all signed in (no lease yet). */
export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const audit = new LeaseAudit();
  const http = pooledFetch();
  const backend: ProofBackend =
    o.proofs === "honk"
      ? poolBackend("honk", { threads: o.proveThreads })
      : simBackend({ durationsMs: o.durations });
  const leases: FleetReport["leases"] = [];
  const fetch = audit.wrap(http.fetch);
  // Workers start in groups, each signed in before the next starts: a thousand sign-ins at once
  // time out on a busy relay and come back as a storm of retries (and extra sessions). With
  // several relays, each gets an equal share of the workers.
  const pools: WorkerPool[] = [];
  const relays = o.relayUrls.length;
  const groups: { relayUrl: string; workers: number }[] = [];
  o.relayUrls.forEach((relayUrl, r) => {
    const share = Math.floor(o.workers / relays) + (r < o.workers % relays ? 1 : 0);
    for (let first = 0; first < share; first += SIGN_IN_GROUP) {
      groups.push({ relayUrl, workers: Math.min(SIGN_IN_GROUP, share - first) });
    }
  });
  for (const [g, { relayUrl, workers }] of groups.entries()) {
    let signedIn = 0;
    let allIn: () => void = () => {};
    const groupIn = new Promise<void>((resolve) => {
      allIn = resolve;
    });
    pools.push(
      await startWorkers({
        relayUrl,
        operatorKey: o.operatorKey,
        workers,
        capacity: 1,
        backend,
        waitMs: o.waitMs,
        namePrefix: `${o.namePrefix}-${g}`,
        onEvent: (e) => {
          if (e.type === "leased") leases.push({ job: e.job.id, at: Date.now(), worker: e.worker });
          else if (e.type === "lost") audit.onLost(e.job.id, e.reason);
          else if (e.type === "signed_in" && ++signedIn === workers) allIn();
        },
        fetch,
      }),
    );
    await groupIn;
  }
  let cpu0 = process.cpuUsage();
  return {
    async mark() {
      audit.resetLoopDelay();
      cpu0 = process.cpuUsage();
    },
    async report() {
      const cpu = process.cpuUsage(cpu0);
      return {
        leases,
        answers: audit.answers,
        lost: audit.lost,
        shed: audit.shed,
        stats: sumStats(pools.map((p) => p.stats())),
        loop: audit.loopDelay(),
        cpuMs: (cpu.user + cpu.system) / 1000,
        shards: 1,
      };
    },
    async stop() {
      await Promise.all(pools.map((p) => p.stop({ graceMs: 1000 }).catch(() => {})));
      await http.close().catch(() => {});
      await backend.close?.();
      audit.close();
    },
  };
}

type Reply = { id: number; error?: string; value?: unknown };

/** The workers split as evenly as possible over `procs` child processes; resolves once signed in. */
export async function startFleetProcs(o: FleetOptions, procs: number): Promise<Fleet> {
  const script = fileURLToPath(new URL("../children/fleet.ts", import.meta.url));
  const sizes = Array.from(
    { length: procs },
    (_, i) => Math.floor(o.workers / procs) + (i < o.workers % procs ? 1 : 0),
  ).filter((n) => n > 0);
  // BENCH_GENERATOR_NODE_ARGS passes flags to the shards' node (e.g. "--cpu-prof").
  const nodeArgs = (process.env.BENCH_GENERATOR_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const shards = sizes.map((workers, i) => {
    const child: ChildProcess = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let next = 0;
    const waiting = new Map<
      number,
      { resolve: (v: unknown) => void; reject: (e: Error) => void }
    >();
    child.on("message", (m: Reply) => {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(`generator shard ${i}: ${m.error}`));
      else w?.resolve(m.value);
    });
    child.once("exit", (code) => {
      for (const w of waiting.values())
        w.reject(new Error(`generator shard ${i} exited (${code})`));
      waiting.clear();
    });
    const call = <T>(op: string, arg?: unknown) =>
      new Promise<T>((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, op, arg });
      });
    return { child, call, workers, index: i };
  });
  // One shard signs in after another (each in groups, as above). Worker ids stay unique across
  // shards: `${namePrefix}-${shard}-${group}-${n}`.
  for (const s of shards) {
    await s.call("start", { ...o, workers: s.workers, namePrefix: `${o.namePrefix}-${s.index}` });
  }
  return {
    async mark() {
      await Promise.all(shards.map((s) => s.call("mark")));
    },
    async report() {
      const rs = await Promise.all(shards.map((s) => s.call<FleetReport>("report")));
      const stats = sumStats(rs.map((r) => r.stats));
      return {
        leases: rs.flatMap((r) => r.leases),
        answers: rs.flatMap((r) => r.answers),
        lost: rs.flatMap((r) => r.lost),
        shed: rs.reduce((s, r) => s + r.shed, 0),
        stats,
        loop: {
          p50: Math.max(...rs.map((r) => r.loop.p50)),
          p99: Math.max(...rs.map((r) => r.loop.p99)),
          max: Math.max(...rs.map((r) => r.loop.max)),
        },
        cpuMs: rs.reduce((s, r) => s + r.cpuMs, 0),
        shards: rs.length,
      };
    },
    async stop() {
      await Promise.all(
        shards.map(async (s) => {
          if (s.child.exitCode !== null || s.child.signalCode !== null) return;
          const exited = new Promise<void>((resolve) => s.child.once("exit", () => resolve()));
          await s.call("stop").catch(() => {});
          s.child.disconnect();
          const timer = setTimeout(() => s.child.kill("SIGKILL"), 10_000);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}
