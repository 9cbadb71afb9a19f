// bench:tree — one block of 1,024 transactions (2,047 jobs) proven by 256 simulated workers
// leasing over loopback HTTP from one relay (its own process, on real Redis and Postgres).
// Durations are Aztec's published proving times scaled down 100x: base 445 ms, merge 100 ms,
// block root 930 ms. Prints makespan against the ideal lower bound, dispatch latency (a child's
// proof accepted -> its parent leased), and, in the second run where 10% of the workers withhold
// every job they lease, the time from each withheld lease to the job's re-lease. With
// `--scheduling affinity` the relay runs SCHEDULING=affinity; either way it prints how many
// parent leases went to a worker that proved one of the parent's children (a proof transfer
// avoided), to compare the two modes.
//
// The simulated workers are the load generator, kept apart from what is measured: they run in
// `--generator-procs` child processes (default one per 250 workers), all signed in before the
// auction opens, and the table prints their CPU and event-loop delay beside the relay's. It also
// prints the relay's lease answer (goal p99 <= 100 ms): per job's first lease, the time its answer
// was read minus the later of when the request went out and when the job became ready (a leaf:
// the block's move to proving; a parent: its last child's provenAt, both the relay's clock on
// this machine), so a long poll's wait for work is not counted; see leaseAnswers below.
// `--preset fleet` is the 1,000-worker goal run: 4,096 txs, 1,000 workers, the honest run only.
// `--relays N` runs N relay processes on the same database and Redis, the workers split evenly
// over them. Beside each process's CPU per job it prints Redis's, Postgres's and the whole
// machine's, and what a mean lease answer within 100 ms would ask of them (closedLoopLine).
//
// With `--proofs honk` every job is a real UltraHonk proof: the workers prove on a pool of
// proving threads, the relay (PROOF_SYSTEM=honk) verifies every proof on its own threads before
// credit. It prints the makespan, the relay's CPU per verified job, and, in the same run,
// bench:proofs' prove and verify times per job type through the proof system against bare bb.js
// on the same circuit (goal: within 1.2x). Its defaults are a small block: 32 txs, 4 workers.
import { spawnSync } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import {
  type JobType,
  leavesFirst,
  nodePriority,
  type PlannedNode,
  planTree,
  STAGE,
  scheduleLevels,
  txsHash,
} from "@prover-boost/core";
import {
  newWorkerLogin,
  RelayClient,
  signAuction,
  signQuote,
  signWorkerLogin,
} from "@prover-boost/sdk";
import type { WorkerStats } from "@prover-boost/worker";
import { Command } from "commander";
import pg from "pg";
import { keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { parseProm, sumOf } from "../test/support/prom-text.ts";
import { bullmqFloor, type FloorRun } from "./lib/bullmq-floor.ts";
import { type FleetOptions, startFleet, startFleetProcs } from "./lib/fleet.ts";
import type { LeaseAnswer } from "./lib/lease-audit.ts";
import {
  type AggregatorPlacement,
  BENCH_DATABASE_URL,
  BENCH_DOMAIN,
  BENCH_REDIS_URL,
  cpuOfCommand,
  cpuOfCommandSince,
  cpuSecondsOf,
  machineCpu,
  percentile,
  startStackProcess,
  syscallsOf,
} from "./lib/stack-process.ts";

const program = new Command("bench:tree")
  .option(
    "--preset <name>",
    "'fleet': the 1,000-worker goal run (4,096 txs, 1,000 workers, honest run only)",
  )
  .option("--txs <n>", "transactions in the block (default 1024; honk: 32; fleet: 4096)")
  .option("--workers <n>", "simulated workers (default 256; honk: 4; fleet: 1000)")
  .option(
    "--generator-procs <n>",
    "child processes the simulated workers are spread over (0: this process; default one per 250 workers; honk: 0)",
  )
  .option("--proofs <system>", "proof system of the block: 'sim' or 'honk' (real proofs)", "sim")
  .option("--prove-threads <n>", "honk: proving threads shared by the workers", "1")
  .option("--verify-threads <n>", "honk: PROOF_VERIFY_THREADS of the relay", "1")
  .option("--proof-runs <n>", "honk: runs per job type of the prove/verify comparison", "10")
  .option("--withhold <fraction>", "fraction of workers that withhold in the second run", "0.1")
  .option("--lease-ms <ms>", "LEASE_MS of the relay", "2000")
  .option("--scale <x>", "divide Aztec's proving times by this", "100")
  .option("--only <run>", "run only 'honest' or 'withholding'")
  .option("--scheduling <mode>", "SCHEDULING of the relay: 'priority' or 'affinity'", "priority")
  .option("--affinity-hold-ms <ms>", "AFFINITY_HOLD_MS of the relay (affinity only)")
  .option(
    "--aggregator <where>",
    "'own-process' (as deployed: npm run relay, npm run aggregator) or 'with-relay' (one process)",
    "own-process",
  )
  .option(
    "--relays <n>",
    "relay processes on the same database and Redis, the workers split evenly over them",
    "1",
  )
  .option("--max-seconds <s>", "give up on a block not paid after this long", "600")
  .option("--no-floor", "skip proving the same tree with BullMQ's own in-process workers")
  .option(
    "--warmup-txs <n>",
    "first prove warm-up blocks of this many txs each on the same processes, not measured (0: none; default 1024, honk: 0)",
  )
  .option(
    "--warmup-blocks <n>",
    "how many warm-up blocks (the aggregator adds a tree once a block, so its fan-out needs several to warm up)",
    "3",
  )
  .option(
    "--timeline",
    "also print, per tree level, when its first and last leases and proofs came",
  )
  .parse();
const o = program.opts();
if (o.scheduling !== "priority" && o.scheduling !== "affinity") {
  program.error(`--scheduling must be 'priority' or 'affinity', got '${o.scheduling}'`);
}
const scheduling = o.scheduling as "priority" | "affinity";
if (o.aggregator !== "own-process" && o.aggregator !== "with-relay") {
  program.error(`--aggregator must be 'own-process' or 'with-relay', got '${o.aggregator}'`);
}
const aggregatorPlacement = o.aggregator as AggregatorPlacement;
const relayCount = Number(o.relays);
if (!Number.isInteger(relayCount) || relayCount < 1) {
  program.error(`--relays must be a whole number >= 1, got '${o.relays}'`);
}
if (o.proofs !== "sim" && o.proofs !== "honk") {
  program.error(`--proofs must be 'sim' or 'honk', got '${o.proofs}'`);
}
const proofs = o.proofs as "sim" | "honk";
const honk = proofs === "honk";
if (o.preset !== undefined && o.preset !== "fleet") {
  program.error(`--preset must be 'fleet', got '${o.preset}'`);
}
if (o.preset === "fleet") {
  o.txs ??= "4096";
  o.workers ??= "1000";
  o.only ??= "honest";
}
const txCount = Number(o.txs ?? (honk ? 32 : 1024));
const workerCount = Number(o.workers ?? (honk ? 4 : 256));
const generatorProcs = honk ? 0 : Number(o.generatorProcs ?? Math.ceil(workerCount / 250));
if (!Number.isSafeInteger(generatorProcs) || generatorProcs < 0) {
  program.error(`--generator-procs must be a non-negative integer, got '${o.generatorProcs}'`);
}
const warmupTxs = Number(o.warmupTxs ?? (honk ? 0 : 1024));
if (!Number.isSafeInteger(warmupTxs) || warmupTxs < 0) {
  program.error(`--warmup-txs must be a non-negative integer, got '${o.warmupTxs}'`);
}
const warmupBlocks = warmupTxs > 0 ? Number(o.warmupBlocks) : 0;
if (!Number.isSafeInteger(warmupBlocks) || warmupBlocks < 0) {
  program.error(`--warmup-blocks must be a non-negative integer, got '${o.warmupBlocks}'`);
}
const leaseMs = Number(o.leaseMs);
const scale = Number(o.scale);
const durations: Record<JobType, number> = {
  base: Math.round(44_500 / scale),
  merge: Math.round(10_000 / scale),
  block_root: Math.round(93_000 / scale),
  single_tx_block_root: Math.round(93_000 / scale),
  empty_block_root: Math.round(93_000 / scale),
};

const sequencerKey = `0x${"5e".repeat(32)}` as const;
const operatorKey = `0x${"0b".repeat(32)}` as const;
const sequencer = privateKeyToAccount(sequencerKey);
const operator = privateKeyToAccount(operatorKey);
const domain = BENCH_DOMAIN;

function idealMs() {
  const plan = planTree(txCount);
  const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
  const path = (key: string): number => {
    const n = byKey.get(key)!;
    return durations[n.type] + Math.max(0, ...n.children.map(path));
  };
  const total = plan.nodes.reduce((s, n) => s + durations[n.type], 0);
  const critical = path(plan.root);
  const scheduled = (priorityOf: (node: PlannedNode) => number) =>
    scheduleLevels(plan, {
      workers: workerCount,
      durationOf: (n) => durations[n.type],
      priorityOf,
    });
  // A tighter bound for this tree on these workers (each holding one job at a time): the base
  // jobs all take the same time, so the last of them cannot finish before ceil(bases / workers)
  // rounds, and after it every job on its way to the root still has to run, one after another.
  const above = (n: PlannedNode): number =>
    n.parent ? durations[byKey.get(n.parent)!.type] + above(byKey.get(n.parent)!) : 0;
  const bases = plan.nodes.filter((n) => n.type === "base");
  const relaysOrder = scheduled(nodePriority);
  const tight =
    bases.length === 0
      ? 0
      : Math.ceil(bases.length / workerCount) * durations.base + Math.min(...bases.map(above));
  return {
    critical,
    perWorker: total / workerCount,
    ideal: Math.max(critical, total / workerCount),
    tight: Math.max(critical, total / workerCount, tight),
    // The relay's own order (nearer the root first) with no overhead at all, and the other one.
    scheduled: relaysOrder.get(0)!,
    // When each level's last proof ends in that schedule (the root's level, 0, at its makespan).
    levels: relaysOrder,
    leavesFirst: scheduled(leavesFirst).get(0)!,
    jobs: plan.nodes.length,
    bases: bases.length,
  };
}

/**
 * Of all leases of parent jobs (withheld ones included), how many went to a worker that proved
 * one of the parent's children: that worker already holds the child's proof, so in a real
 * deployment one proof transfer is avoided. One operator runs every worker, so worker ids name
 * workers uniquely.
 */
function parentLeasesToChildProvers(
  rows: readonly { id: string; childIds: string[]; workerId: string | null }[],
  leases: readonly { job: string; worker: string }[],
) {
  const prover = new Map(rows.map((r) => [r.id, r.workerId]));
  const children = new Map(rows.map((r) => [r.id, r.childIds]));
  let parentLeases = 0;
  let avoided = 0;
  for (const l of leases) {
    const kids = children.get(l.job) ?? [];
    if (kids.length === 0) continue;
    parentLeases++;
    if (kids.some((c) => prover.get(c) === l.worker)) avoided++;
  }
  return { avoided, parentLeases };
}

/**
 * CPU per job of each process, ms: the relay, the aggregator, the load generator; and of the
 * services on this machine (Redis, Postgres) and the whole machine (every process, all cores).
 */
interface CpuPerJob {
  relay: number;
  aggregator: number;
  workers: number;
  /** Of `workers`, the shards' (the simulated workers); the rest is this process's. */
  shards: number;
  /** The redis-server processes' on this machine (NaN: none here). */
  redis: number;
  /** The postgres processes' on this machine (NaN: none here; see cpuOfCommandSince). */
  postgres: number;
  /** Busy CPU of the whole machine, all cores together (NaN: /proc/stat unreadable). */
  machine: number;
  /** The relays' read and write system calls per job (NaN: /proc/<pid>/io unreadable). */
  relayReads: number;
  relayWrites: number;
}

type BenchStack = Awaited<ReturnType<typeof startStackProcess>>;
type CpuMark = {
  relay: number;
  aggregator: number;
  workers: NodeJS.CpuUsage;
  redis: ReturnType<typeof cpuOfCommand>;
  postgres: ReturnType<typeof cpuOfCommand>;
  machine: number;
  relayCalls: { reads: number; writes: number };
};

/** Read and write system calls of every relay process together (NaN where unreadable). */
function relaySyscalls(stack: BenchStack): { reads: number; writes: number } {
  const out = { reads: 0, writes: 0 };
  for (const pid of stack.pids) {
    const n = syscallsOf(pid);
    out.reads += n?.reads ?? Number.NaN;
    out.writes += n?.writes ?? Number.NaN;
  }
  return out;
}

/** CPU seconds of every relay process together. */
const relayCpuSeconds = (stack: BenchStack) =>
  stack.pids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);

function cpuNow(stack: BenchStack): CpuMark {
  return {
    relay: relayCpuSeconds(stack),
    aggregator: stack.aggregatorPid ? cpuSecondsOf(stack.aggregatorPid) : Number.NaN,
    workers: process.cpuUsage(),
    redis: cpuOfCommand("redis-server"),
    postgres: cpuOfCommand("postgres"),
    machine: machineCpu()?.busy ?? Number.NaN,
    relayCalls: relaySyscalls(stack),
  };
}

/** CPU since `from` per job; `shardsCpuMs`: the simulated workers' since the fleet's mark. */
function cpuPerJob(stack: BenchStack, from: CpuMark, shardsCpuMs: number, jobs: number): CpuPerJob {
  const self = process.cpuUsage(from.workers);
  const calls = relaySyscalls(stack);
  return {
    relay: ((relayCpuSeconds(stack) - from.relay) * 1000) / jobs,
    aggregator: stack.aggregatorPid
      ? ((cpuSecondsOf(stack.aggregatorPid) - from.aggregator) * 1000) / jobs
      : Number.NaN,
    // Status polls and withholders are this process's.
    workers: (shardsCpuMs + (self.user + self.system) / 1000) / jobs,
    shards: shardsCpuMs / jobs,
    redis: (cpuOfCommandSince("redis-server", from.redis) * 1000) / jobs,
    postgres: (cpuOfCommandSince("postgres", from.postgres) * 1000) / jobs,
    machine: (((machineCpu()?.busy ?? Number.NaN) - from.machine) * 1000) / jobs,
    relayReads: (calls.reads - from.relayCalls.reads) / jobs,
    relayWrites: (calls.writes - from.relayCalls.writes) / jobs,
  };
}

/** What the relays' /metrics counted so far (summed over the relays). */
interface RelayCounts {
  /** Pops of BullMQ's queues that brought a job, and those that found the queue empty. */
  job: number;
  empty: number;
  /** The job marks' group-commit writes and the marks they carried (Postgres round trips). */
  markWrites: number;
  marks: number;
  /** Each step of handing jobs in and out (prover_boost_job_step_seconds): seconds, times. */
  steps: Map<string, { sum: number; count: number }>;
}

async function relayCountsOf(stack: BenchStack): Promise<RelayCounts> {
  const out: RelayCounts = { job: 0, empty: 0, markWrites: 0, marks: 0, steps: new Map() };
  for (const url of stack.urls) {
    const samples = parseProm(await (await fetch(`${url}/metrics`)).text());
    out.job += sumOf(samples, "prover_boost_queue_pops_total", { outcome: "job" });
    out.empty += sumOf(samples, "prover_boost_queue_pops_total", { outcome: "empty" });
    const writer = { writer: "job_marks" };
    out.markWrites += sumOf(samples, "prover_boost_group_commit_batch_size_count", writer);
    out.marks += sumOf(samples, "prover_boost_group_commit_batch_size_sum", writer);
    for (const { name, labels, value } of samples) {
      if (name !== "prover_boost_job_step_seconds_count") continue;
      const step = labels.step!;
      const s = out.steps.get(step) ?? { sum: 0, count: 0 };
      s.sum += sumOf(samples, "prover_boost_job_step_seconds_sum", { step });
      s.count += value;
      out.steps.set(step, s);
    }
  }
  return out;
}

/** Each step's mean time (ms) between two reads of the relays' counts. */
function stepMeansSince(now: RelayCounts, then: RelayCounts): Map<string, number> {
  const out = new Map<string, number>();
  for (const [step, s] of now.steps) {
    const before = then.steps.get(step) ?? { sum: 0, count: 0 };
    const count = s.count - before.count;
    if (count > 0) out.set(step, ((s.sum - before.sum) * 1000) / count);
  }
  return out;
}

function statsSince(now: WorkerStats, then: WorkerStats): WorkerStats {
  const out = { ...now };
  for (const k of Object.keys(out) as (keyof WorkerStats)[]) out[k] -= then[k];
  return out;
}

async function runOnce(withholdFraction: number) {
  const stack = await startStackProcess(
    {
      SEQUENCERS: sequencer.address,
      ADMIN_TOKEN: "bench-admin-token",
      LEASE_MS: String(leaseMs),
      // The aggregator runs at its default pace.
      AGGREGATOR_TICK_MS: "250",
      SCHEDULING: scheduling,
      ...(honk ? { PROOF_SYSTEM: "honk", PROOF_VERIFY_THREADS: String(o.verifyThreads) } : {}),
      ...(o.affinityHoldMs !== undefined ? { AFFINITY_HOLD_MS: String(o.affinityHoldMs) } : {}),
    },
    aggregatorPlacement,
    relayCount,
  );
  const client = new RelayClient({ baseUrl: stack.url, adminToken: "bench-admin-token" });
  const stops: (() => Promise<void>)[] = [];
  try {
    await client.deposit(operator.address, 10n ** 21n);
    // The honest workers (the load generator: in this process or sharded over child processes)
    // all sign in before the auction opens, so the tree meets a ready fleet and no sign-in's
    // signing is counted in the figures below.
    const withholders = Math.round(workerCount * withholdFraction);
    const fleetOptions: FleetOptions = {
      relayUrls: stack.urls,
      operatorKey,
      workers: workerCount - withholders,
      namePrefix: "honest",
      durations,
      waitMs: 10_000,
      proofs,
      proveThreads: Number(o.proveThreads),
    };
    const fleet =
      generatorProcs > 0
        ? await startFleetProcs(fleetOptions, generatorProcs)
        : await startFleet(fleetOptions);
    stops.push(() => fleet.stop());
    /** Opens block `n` with `count` txs and bids on it as the fleet's operator. */
    const openBlock = async (n: number, count: number) => {
      const txs = Array.from({ length: count }, (_, i) => keccak256(toHex(`bench-tx-${n}-${i}`)));
      const now = Date.now();
      const auction = {
        blockNumber: n,
        slot: Math.floor(now / 12_000) + n,
        txCount: count,
        txsHash: txsHash(txs),
        blockReward: (10n ** 18n).toString(),
        minBond: "1000",
        maxFeeBps: 5000,
        // Long enough for a large block's auction to be opened and bid on by a busy relay.
        biddingClosesAt: now + Math.max(3000, 2 * count),
        proofDeadline: now + 600_000,
      };
      await client.openAuction(auction, txs, await signAuction(sequencer, domain, auction));
      const quote = {
        epochToProve: n,
        validUntilSlot: auction.slot + 100,
        bondAmount: "5000",
        prover: operator.address,
        basisPointFee: 1000,
      };
      await client.submitBid(quote, await signQuote(operator, domain, quote));
    };
    // A saturated relay may answer status polls slowly: a failed poll is simply retried.
    const poll = (n: number) => client.getBlock(n).catch(() => null);
    // The aggregator's CPU for fanning a block's tree out: its CPU when a poll first finds the
    // tree out (the block's stage past committed), less its CPU just before the last poll that
    // still found the auction open (the fan-out starts only after the auction's commit). Polls
    // are 200 ms apart, so about two polls' worth of idle ticks are counted with it. One entry
    // per block, in order, with the tree's job count.
    const fanOuts: { cpuMs: number; jobs: number }[] = [];
    const aggregatorCpu = () =>
      stack.aggregatorPid ? cpuSecondsOf(stack.aggregatorPid) * 1000 : Number.NaN;
    const untilPaid = async (n: number) => {
      let beforeOpenPoll = aggregatorCpu();
      let block = await poll(n);
      let fannedOut = false;
      const seen = (cpuBeforePoll: number) => {
        if (fannedOut || !block) return;
        if (block.stage === STAGE.auction_open) beforeOpenPoll = cpuBeforePoll;
        else if (block.stage !== STAGE.committed) {
          fannedOut = true;
          fanOuts.push({ cpuMs: aggregatorCpu() - beforeOpenPoll, jobs: block.tree.total });
        }
      };
      seen(beforeOpenPoll);
      const deadline = Date.now() + Number(o.maxSeconds) * 1000;
      let shownAt = Date.now();
      while (block?.stage !== "paid" && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        const cpu = aggregatorCpu();
        block = (await poll(n)) ?? block;
        seen(cpu);
        // A long run says how far it is (on stderr, beside the table).
        if (block && Date.now() - shownAt >= 10_000) {
          shownAt = Date.now();
          const t = block.tree;
          console.error(
            `  ... block ${n} ${block.stage}: ${t.proven}/${t.total} proven, ${t.leased} leased, ${t.queued} queued`,
          );
        }
      }
      return block;
    };

    // The warm-up blocks: every process's hot paths compiled by V8's optimizing compiler before
    // the measured block, as in a relay and an aggregator that have been up for a while. The
    // aggregator adds one tree a block, and its fan-out (BullMQ's FlowProducer) still gets
    // cheaper over its first few trees, hence several blocks. The first block's figures are
    // printed as "cold", for comparison. Proven by the honest fleet alone, before any withholder
    // starts.
    let cold: { txs: number; jobs: number; cpuMsPerJob: CpuPerJob } | undefined;
    /** What the fleet had seen when the last warm-up block was paid. */
    let warmed: Awaited<ReturnType<typeof fleet.report>> | undefined;
    const blockNumber = warmupBlocks + 1;
    for (let n = 1; n <= warmupBlocks; n++) {
      await openBlock(n, warmupTxs);
      await fleet.mark();
      const before = cpuNow(stack);
      const warm = await untilPaid(n);
      if (warm?.stage !== "paid") throw new Error(`warm-up block ${n} was not paid in time`);
      warmed = await fleet.report();
      if (!cold) {
        const jobs = planTree(warmupTxs).nodes.length;
        cold = { txs: warmupTxs, jobs, cpuMsPerJob: cpuPerJob(stack, before, warmed.cpuMs, jobs) };
      }
    }
    const ofBlock = (job: string) => job.startsWith(`${blockNumber}-`);

    const leases: { job: string; at: number; worker: string }[] = [];
    const withheld: { job: string; at: number }[] = [];
    let stopWithholding = false;
    const withholderLoops = Array.from({ length: withholders }, async (_, i) => {
      const login = newWorkerLogin({
        operator: operator.address,
        workerId: `withholder-${i}`,
        capacity: 1,
        jobTypes: ["base", "merge", "block_root"] as JobType[],
      });
      const { token } = await client.createSession(
        login,
        await signWorkerLogin(operator, domain, login),
      );
      const w = client.withToken(token);
      while (!stopWithholding) {
        try {
          const job = await w.lease(2000);
          if (job) {
            const at = Date.now();
            withheld.push({ job: job.id, at });
            leases.push({ job: job.id, at, worker: `withholder-${i}` });
          }
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // at capacity until the lease lapses
        }
      }
    });
    stops.push(async () => {
      stopWithholding = true;
      await Promise.allSettled(withholderLoops);
    });

    // CPU each process spends while the tree is proven (from the bid to paid), per job.
    await openBlock(blockNumber, txCount);
    await fleet.mark();
    const counts0 = await relayCountsOf(stack);
    const cpu0 = cpuNow(stack);
    const block = await untilPaid(blockNumber);
    if (!block) throw new Error("the relay never answered a status poll");
    if (block.stage !== "paid") {
      // Say what the workers saw before giving up: whose delay lost the leases that stalled it.
      const seen = await fleet.report().catch(() => null);
      if (seen) {
        const relay = seen.lost.filter((l) => l.cause === "relay").length;
        const late = seen.lost.filter((l) => (l.answerLeftMs ?? 0) < 0).length;
        const ms = (xs: number[]) =>
          `p50 ${fmt(percentile(xs, 50))}, p99 ${fmt(percentile(xs, 99))}`;
        console.log(`  not paid in time: worker stats ${JSON.stringify(seen.stats)}`);
        console.log(
          `  lost leases ${seen.lost.length} (relay-caused ${relay}; answered only after the lease had lapsed ${late})   leases shed with 503: ${seen.shed}`,
        );
        console.log(
          `  lease requests that returned a job: request to answer ${ms(seen.answers.map((a) => a.answeredAt - a.sentAt))}; lost leases' time left when their answer was read ${ms(seen.lost.map((l) => l.answerLeftMs ?? 0))}`,
        );
      }
      throw new Error(`block not paid in time (stage ${block.stage})`);
    }
    const makespan = block.stages.proven! - block.stages.proving!;
    const jobsCount = ideal.jobs;
    const all = await fleet.report();
    const cpuMsPerJob = cpuPerJob(stack, cpu0, all.cpuMs, jobsCount);
    const countsNow = await relayCountsOf(stack);
    const pops = { job: countsNow.job - counts0.job, empty: countsNow.empty - counts0.empty };
    const markWrites = {
      writes: countsNow.markWrites - counts0.markWrites,
      marks: countsNow.marks - counts0.marks,
    };
    const steps = stepMeansSince(countsNow, counts0);
    // The measured block's leases, answers and losses; counts since the warm-up.
    const generated = {
      ...all,
      leases: all.leases.filter((l) => ofBlock(l.job)),
      answers: all.answers.filter((a) => ofBlock(a.job)),
      lost: all.lost.filter((l) => ofBlock(l.job)),
      shed: all.shed - (warmed?.shed ?? 0),
      stats: warmed ? statsSince(all.stats, warmed.stats) : all.stats,
    };
    leases.push(...generated.leases);

    // Dispatch latency: from the last child's acceptance (its proof's mark in Postgres, relay
    // clock) to the parent's first lease (the worker's receipt). A parent is leased the moment
    // its last child's completion is in Redis, beside that proof's mark, so a lease can come back
    // before the mark is stamped: counted as 0 ms, and how many were is printed.
    const db = new pg.Client({ connectionString: BENCH_DATABASE_URL });
    await db.connect();
    const rows = (
      await db.query(
        `SELECT id, type, level, "childIds", "provenAt"::text AS "provenAt", "workerId" FROM "${stack.schema}"."ProofJob" WHERE "blockNumber" = $1`,
        [blockNumber],
      )
    ).rows as {
      id: string;
      type: JobType;
      level: number;
      childIds: string[];
      provenAt: string;
      workerId: string | null;
    }[];
    await db.end();
    const provenAt = new Map(rows.map((r) => [r.id, Number(r.provenAt)]));
    const leasesByJob = new Map<string, number[]>();
    for (const l of leases) leasesByJob.set(l.job, [...(leasesByJob.get(l.job) ?? []), l.at]);
    const dispatch: number[] = [];
    let leasedBeforeMark = 0;
    for (const r of rows) {
      if (r.childIds.length === 0) continue;
      const ready = Math.max(...r.childIds.map((c) => provenAt.get(c)!));
      const leased = Math.min(...(leasesByJob.get(r.id) ?? []));
      if (!Number.isFinite(leased)) continue;
      if (leased < ready) leasedBeforeMark++;
      dispatch.push(Math.max(0, leased - ready));
    }
    const withheldJobs = new Set(withheld.map((w) => w.job));
    const transfers = parentLeasesToChildProvers(rows, leases);
    const relet: number[] = [];
    for (const w of withheld) {
      const next = (leasesByJob.get(w.job) ?? []).filter((t) => t > w.at).sort((a, b) => a - b)[0];
      if (next !== undefined) relet.push(next - w.at);
    }
    return {
      makespan,
      cpuMsPerJob,
      cold,
      fanOuts,
      timeline: timeline(rows, leasesByJob, provenAt, block.stages.proving!, ideal.levels),
      start: blockStart(generated.leases, block.stages, workerCount),
      idle: idleBetweenJobs(rows, leases),
      dispatch,
      leasedBeforeMark,
      relet,
      transfers,
      withheldCount: withheld.length,
      stats: generated.stats,
      lost: generated.lost,
      shed: generated.shed,
      pops,
      markWrites,
      steps,
      generatorLoop: generated.loop,
      shards: generated.shards,
      // A job a withholder held waited for its lapse: not the relay's answer time.
      leaseAnswer: leaseAnswers(
        generated.answers.filter((a) => !withheldJobs.has(a.job)),
        rows,
        provenAt,
        block.stages.proving!,
      ),
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await stack.stop();
  }
}

/**
 * The relay's lease answer, per job's first lease (re-leases after a lapse, and jobs a withholder
 * held, are left out): when
 * the answer was read minus the later of when the request went out and when the job became ready.
 * Ready: for a leaf, the block's move to proving (the relay's clock); for a parent, the last of
 * its children's provenAt (the relay's clock, on this machine). Time the request spent waiting
 * for work does not count; the relay's reading, queueing, waking the poll and answering does (and
 * so does any delay of the load generator in reading the answer: see its event-loop delay).
 */
function leaseAnswers(
  answers: readonly LeaseAnswer[],
  rows: readonly { id: string; childIds: string[] }[],
  provenAt: ReadonlyMap<string, number>,
  proving: number,
) {
  const children = new Map(rows.map((r) => [r.id, r.childIds]));
  const first = new Map<string, LeaseAnswer>();
  for (const a of answers) {
    const f = first.get(a.job);
    if (!f || a.answeredAt < f.answeredAt) first.set(a.job, a);
  }
  const ms: number[] = [];
  const withResult: number[] = [];
  const base: number[] = [];
  // Leaves asked for by workers already waiting when the block moved to proving: all answered
  // at once, the relay's wave at the block's start.
  const start: number[] = [];
  const rest: number[] = [];
  for (const a of first.values()) {
    const kids = children.get(a.job) ?? [];
    const ready = kids.length === 0 ? proving : Math.max(...kids.map((c) => provenAt.get(c)!));
    const answer = a.answeredAt - Math.max(a.sentAt, ready);
    ms.push(answer);
    if (a.withResult) withResult.push(answer);
    if (kids.length === 0) base.push(answer);
    if (kids.length === 0 && a.sentAt <= proving) start.push(answer);
    else rest.push(answer);
  }
  return { ms, withResult, base, start, rest };
}

/**
 * The wave at the block's start: `start` workers waiting, each answered once its lease is taken.
 * For a p99 within `goalMs` over `total` first leases, at most 1% of them may be later, so at
 * least start − ⌊total / 100⌋ of the wave must be answered within goalMs of the move to proving:
 * the relay must hand out leases at that rate, whatever the rest of the block does.
 */
function startWaveBound(start: number, total: number, goalMs: number) {
  const within = Math.max(0, start - Math.floor(total / 100));
  return { within, msPerLease: within === 0 ? Number.POSITIVE_INFINITY : goalMs / within };
}

/**
 * What a mean lease answer within 100 ms asks of the relay and the machine. While every worker
 * has a base job to take, each goes round answer, prove, answer: N workers with think time Z (a
 * base job's duration) and mean answer R complete X = N / (R + Z) jobs a second (the interactive
 * response time law), so R <= 100 ms needs X >= N / (100 ms + Z): at most 1 / X of relay CPU a
 * job on its one core, and cores / X of the machine's. Time a shed request spends on its
 * Retry-After would count in R too: it is the worker's wait for a job. Printed beside this run's
 * own CPU figures and its measured mean base answer.
 */
function closedLoopLine(
  baseAnswers: readonly number[],
  c: CpuPerJob,
  cores: number,
  bases: number,
): string {
  const n = Math.min(workerCount, bases);
  const z = durations.base;
  const rate = (n * 1000) / (100 + z);
  const need = 1000 / rate;
  const mean = baseAnswers.reduce((a, b) => a + b, 0) / Math.max(1, baseAnswers.length);
  const machine = Number.isNaN(c.machine) ? "" : `, the machine ${c.machine.toFixed(2)} ms`;
  // What the machine's other processes (Redis, Postgres, the aggregator, the load generator) took
  // of the same budget: whatever is left is all a relay on this machine could spend.
  const others = c.machine - c.relay;
  const left = need * cores - others;
  const withoutGenerator = left + c.workers;
  const onThisMachine = Number.isNaN(others)
    ? ""
    : `; the other processes took ${others.toFixed(2)} ms a job, ${left > 0 ? `leaving the relay at most ${left.toFixed(2)} ms` : "more than the whole budget, so on this machine no relay, however cheap, meets it"}; with the load generator's ${c.workers.toFixed(2)} ms on other machines, ${withoutGenerator > 0 ? `at most ${withoutGenerator.toFixed(2)} ms would be left for the relay` : "still none would be left"}`;
  return `  closed loop         ${n} workers cycling on ${z} ms base jobs: a mean base lease answer within 100 ms (measured ${fmt(mean)} over ${baseAnswers.length}) needs ${Math.round(rate)} jobs/s, at most ${need.toFixed(2)} ms a job on the relay's core and ${(need * cores).toFixed(2)} ms of the machine's ${cores} cores a job (this run: the relay ${c.relay.toFixed(2)} ms${machine}${onThisMachine})`;
}

/**
 * Per tree level (leaves first): jobs, first and last lease, last proof, from proving's start, and
 * how late that last proof was against the relay's order with no overhead (`schedule`, when each
 * level's last proof ends there). `lateness` is that figure by level, for the summary line.
 */
function timeline(
  rows: readonly { id: string; level: number }[],
  leasesByJob: ReadonlyMap<string, number[]>,
  provenAt: ReadonlyMap<string, number>,
  start: number,
  schedule: ReadonlyMap<number, number>,
) {
  const levels = new Map<
    number,
    { jobs: number; firstLease: number; lastLease: number; lastProof: number }
  >();
  for (const r of rows) {
    const l = levels.get(r.level) ?? { jobs: 0, firstLease: Infinity, lastLease: 0, lastProof: 0 };
    const at = leasesByJob.get(r.id) ?? [];
    l.jobs++;
    l.firstLease = Math.min(l.firstLease, ...at);
    l.lastLease = Math.max(l.lastLease, ...at);
    l.lastProof = Math.max(l.lastProof, provenAt.get(r.id) ?? 0);
    levels.set(r.level, l);
  }
  const deepestFirst = [...levels.entries()].sort(([a], [b]) => b - a);
  const lateness = new Map(
    deepestFirst.map(([level, l]) => [level, l.lastProof - start - schedule.get(level)!]),
  );
  const lines = deepestFirst.map(
    ([level, l]) =>
      `  level ${String(level).padStart(2)}  ${String(l.jobs).padStart(4)} jobs   leased ${l.firstLease - start}..${l.lastLease - start} ms   last proof ${l.lastProof - start} ms (schedule bound's ${schedule.get(level)} ms, ${signed(lateness.get(level)!)})`,
  );
  return { lines, lateness };
}

/**
 * How soon the block's jobs went out: the fan-out (from its auction's close to its move to
 * proving; a winner's block only), then its first lease and the lease that completed the first
 * wave (one job for each worker), as the workers received them, from the move to proving (the
 * relay's stage times and the workers' clocks are the same machine's).
 */
function blockStart(
  leases: readonly { at: number }[],
  stages: { committed?: number; proving?: number },
  workers: number,
) {
  const proving = stages.proving!;
  const at = leases.map((l) => l.at - proving).sort((a, b) => a - b);
  const wave = Math.min(workers, at.length);
  return {
    fanOut: proving - (stages.committed ?? Number.NaN),
    first: at[0] ?? Number.NaN,
    wave,
    waveEnd: at[wave - 1] ?? Number.NaN,
  };
}

const signed = (ms: number) => `${ms >= 0 ? "+" : "−"}${fmt(Math.abs(ms))}`;

/**
 * Where the makespan's excess over the schedule bound accrued: by the end of the deepest level
 * (the base jobs' rounds, with the merges the relay's order runs among them) and over the levels
 * above it, one wave of results and leases per level.
 */
function excessLine(lateness: ReadonlyMap<number, number>) {
  const deepest = Math.max(...lateness.keys());
  const atDeepest = lateness.get(deepest)!;
  const atRoot = lateness.get(0)!;
  return `  excess by level     the deepest level's last proof ${signed(atDeepest)} against the schedule bound's; the root's ${signed(atRoot)}: ${signed(atRoot - atDeepest)} over the ${deepest} levels above (${fmt((atRoot - atDeepest) / Math.max(1, deepest))} a level)`;
}

/**
 * A worker's time between two jobs: from one lease to its next, less the first job's proving
 * time. It covers handing the proof in, asking again and waiting for ready work.
 */
function idleBetweenJobs(
  rows: readonly { id: string; type: JobType }[],
  leases: readonly { job: string; at: number; worker: string }[],
) {
  const type = new Map(rows.map((r) => [r.id, r.type]));
  const last = new Map<string, { job: string; at: number }>();
  const idle: number[] = [];
  for (const l of [...leases].sort((a, b) => a.at - b.at)) {
    const prev = last.get(l.worker);
    if (prev) idle.push(l.at - prev.at - durations[type.get(prev.job)!]);
    last.set(l.worker, l);
  }
  return idle;
}

const ideal = idealMs();
const fmt = (n: number) => `${Math.round(n)} ms`;

/**
 * Where a job's turn in the relay goes: each step's mean over the measured block, from the relays'
 * prover_boost_job_step_seconds. A result that asks for the next job is answered after the
 * completion and the later of the proof's mark and the next lease (gate, take); the lease's own
 * mark is written after the answer.
 */
function stepsLine(steps: ReadonlyMap<string, number>) {
  const at = (step: string) => {
    const ms = steps.get(step);
    return ms === undefined ? "n/a" : `${ms.toFixed(ms < 1 ? 2 : 1)} ms`;
  };
  return `  relay steps         means in the measured block: a result's verify ${at("verify")}, complete ${at("complete")} (Redis), proof mark ${at("proof_mark")} (Postgres); a lease's gate ${at("gate")} (waiting for its turn), take ${at("take")} (look, pop and record in Redis), then its mark ${at("lease_mark")} (Postgres, written after the answer). The take is three round trips one after another, each other Redis or Postgres step one or two, every one waiting for the relay's event loop to send it (at the end of its pass) and to read the reply`;
}

/** Lost leases split by whose delay lost them, and the load generator's own event-loop delay. */
function printLost(r: Awaited<ReturnType<typeof runOnce>>) {
  const relay = r.lost.filter((l) => l.cause === "relay").length;
  console.log(
    `  lost leases: ${r.lost.length} (relay-caused ${relay}, load-generator-caused ${r.lost.length - relay})   leases shed with 503: ${r.shed}`,
  );
  const { job, empty } = r.pops;
  console.log(
    `  queue pops          ${job + empty} (${((job + empty) / ideal.jobs).toFixed(2)} a job): ${job} brought a job, ${empty} found their queue empty (the job was taken between the look and the pop)`,
  );
  const mw = r.markWrites;
  console.log(
    `  job-mark writes     ${mw.writes} (${(mw.writes / ideal.jobs).toFixed(2)} a job), ${mw.marks} marks, ${(mw.marks / Math.max(1, mw.writes)).toFixed(1)} a write (the relays' group-committed records of leases and proofs: each write one Postgres round trip and one Prisma call)`,
  );
  console.log(stepsLine(r.steps));
  // The generator's share in detail: how much of the lease its answer left, and how late the
  // worker's last request went out (a lease answered with almost nothing left is hard to keep).
  const gen = r.lost.filter((l) => l.cause === "load-generator");
  if (gen.length > 0) {
    const left = gen.map((l) => l.answerLeftMs ?? Number.NaN).filter((x) => !Number.isNaN(x));
    const late = gen
      .map((l) => l.sentBeforeDeadlineMs)
      .filter((x): x is number => x !== null)
      .map((x) => -x);
    console.log(
      `    load-generator-caused: lease time left when the answer was read p50 ${fmt(percentile(left, 50))}, min ${fmt(Math.min(...left))}; last request sent after the deadline by p50 ${fmt(percentile(late, 50))}, max ${fmt(Math.max(...late))}`,
    );
  }
  for (const l of [...r.lost.filter((l) => l.cause === "relay").slice(0, 3), ...gen.slice(0, 2)]) {
    const sent =
      l.sentBeforeDeadlineMs === null
        ? "no heartbeat sent"
        : `last ${l.lastRequest} sent ${Math.abs(Math.round(l.sentBeforeDeadlineMs))} ms ${l.sentBeforeDeadlineMs >= 0 ? "before" : "after"} the deadline it knew`;
    const answer =
      l.answerLeftMs === null
        ? ""
        : `; lease answer read ${Math.abs(Math.round(l.answerLeftMs))} ms ${l.answerLeftMs >= 0 ? "before" : "after"} its deadline`;
    console.log(`    ${l.job}: ${l.cause}, ${sent}${answer} (${l.reason})`);
  }
  const g = r.generatorLoop;
  console.log(
    `  load generator      event-loop delay p50 ${fmt(g.p50)}   p99 ${fmt(g.p99)}   max ${fmt(g.max)}   (while proving; the worst of the simulated workers' ${r.shards} ${r.shards === 1 ? "process" : "processes"})`,
  );
}

/** Our figures as a multiple of BullMQ's own in-process workers proving the same tree. */
function printFloor(floor: FloorRun, r: Awaited<ReturnType<typeof runOnce>>) {
  const c = r.cpuMsPerJob;
  const ours = c.relay + (Number.isNaN(c.aggregator) ? 0 : c.aggregator) + c.workers;
  console.log(
    `  vs BullMQ floor     makespan ${fmt(r.makespan)} vs ${fmt(floor.makespanMs)} (${(r.makespan / floor.makespanMs).toFixed(2)}x)   CPU per job ${ours.toFixed(2)} ms (relay + aggregator + workers) vs ${floor.cpuMsPerJob.toFixed(2)} ms (${(ours / floor.cpuMsPerJob).toFixed(1)}x)`,
  );
}
if (honk) {
  console.log(
    `bench:tree --proofs honk — ${txCount} txs (${ideal.jobs} jobs), ${workerCount} workers sharing ${o.proveThreads} proving thread(s), relay verifying on ${o.verifyThreads} thread(s), LEASE_MS ${leaseMs}, SCHEDULING ${scheduling}`,
  );
  const r = await runOnce(0);
  console.log(`\n[honest, real proofs]`);
  console.log(
    `  makespan            ${fmt(r.makespan)}   (${(r.makespan / ideal.jobs).toFixed(0)} ms per job over the tree)`,
  );
  console.log(
    `  dispatch latency    p50 ${fmt(percentile(r.dispatch, 50))}   p99 ${fmt(percentile(r.dispatch, 99))}   (${r.dispatch.length} parents${r.leasedBeforeMark > 0 ? `, ${r.leasedBeforeMark} of them leased before their last child's mark was stamped: 0 ms` : ""})`,
  );
  console.log(`  worker stats        ${JSON.stringify(r.stats)}`);
  const c = r.cpuMsPerJob;
  console.log(
    `  CPU per verified job  relay ${c.relay.toFixed(2)} ms (its verifying threads included)   aggregator ${Number.isNaN(c.aggregator) ? "(in the relay)" : `${c.aggregator.toFixed(2)} ms`}   workers ${c.workers.toFixed(2)} ms (proving threads included)`,
  );
  // Prove and verify per job type, through the proof system and bare bb.js, in this run.
  console.log(`\n[prove and verify per job type vs bare bb.js, ${o.proofRuns} runs each]`);
  const res = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      fileURLToPath(new URL("./proofs.ts", import.meta.url)),
      "--runs",
      String(o.proofRuns),
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  process.exit(res.status ?? 1);
}
console.log(
  `bench:tree — ${txCount} txs (${ideal.jobs} jobs), ${workerCount} workers, durations base ${durations.base} / merge ${durations.merge} / root ${durations.block_root} ms, LEASE_MS ${leaseMs}, SCHEDULING ${scheduling}${scheduling === "affinity" ? ` (AFFINITY_HOLD_MS ${o.affinityHoldMs ?? "default"})` : ""}${relayCount > 1 ? `, ${relayCount} relay processes (relay CPU: theirs together)` : ""}`,
);
console.log(
  `ideal lower bound: ${fmt(ideal.ideal)} (critical path ${fmt(ideal.critical)}, work/workers ${fmt(ideal.perWorker)})`,
);
console.log(
  `tighter bound for this tree: ${fmt(ideal.tight)} (the last base job ends after ceil(bases/workers) rounds; its merges and root follow; ratio to ideal ${(ideal.tight / ideal.ideal).toFixed(3)} at best)`,
);
console.log(
  `schedule bound: ${fmt(ideal.scheduled)} (the relay's order, nearer the root first, with no overhead at all: each worker takes the most urgent ready job the moment it is free; ${(ideal.scheduled / ideal.tight).toFixed(3)}× the tighter bound, as ready merges take workers from the last rounds of base jobs; 1.25× the tighter bound leaves ${fmt(1.25 * ideal.tight - ideal.scheduled)} for every lease, result and wake-up)`,
);
console.log(
  `  in the other order: ${fmt(ideal.leavesFirst)} (every base job first, then the farther from the root first, also with no overhead: ${(ideal.leavesFirst / ideal.tight).toFixed(3)}× the tighter bound; what the relay's order costs before any overhead)`,
);
let floor: FloorRun | null = null;
for (const [label, fraction] of [
  ["honest", 0],
  ["withholding", Number(o.withhold)],
] as const) {
  if (o.only && o.only !== label) continue;
  const r = await runOnce(fraction);
  // The floor runs after our honest run, on the same Redis, with the relay stopped.
  if (o.floor && label === "honest") {
    floor = await bullmqFloor(BENCH_REDIS_URL, txCount, workerCount, durations);
  }
  console.log(
    `\n[${label}${fraction ? ` ${Math.round(fraction * 100)}% of workers withhold` : ""}]`,
  );
  console.log(
    `  makespan            ${fmt(r.makespan)}   ratio to ideal ${(r.makespan / ideal.ideal).toFixed(3)}   to the tighter bound ${(r.makespan / ideal.tight).toFixed(3)}   to the schedule bound ${(r.makespan / ideal.scheduled).toFixed(3)}`,
  );
  console.log(excessLine(r.timeline.lateness));
  console.log(
    `  block start         ${Number.isFinite(r.start.fanOut) ? `moved to proving ${fmt(r.start.fanOut)} after its auction closed (the tree added); ` : ""}first lease ${fmt(r.start.first)} after the move to proving, the first ${r.start.wave} (a job for each worker) by ${fmt(r.start.waveEnd)}`,
  );
  console.log(
    `  dispatch latency    p50 ${fmt(percentile(r.dispatch, 50))}   p99 ${fmt(percentile(r.dispatch, 99))}   (${r.dispatch.length} parents${r.leasedBeforeMark > 0 ? `, ${r.leasedBeforeMark} of them leased before their last child's mark was stamped: 0 ms` : ""})`,
  );
  const { avoided, parentLeases } = r.transfers;
  console.log(
    `  proof transfer avoided: ${avoided} of ${parentLeases} parent leases went to a worker that proved a child (${((100 * avoided) / Math.max(1, parentLeases)).toFixed(1)}%)`,
  );
  if (fraction > 0) {
    const within = r.relet.filter((ms) => ms <= leaseMs + 1000).length;
    console.log(
      `  withheld → re-lease p50 ${fmt(percentile(r.relet, 50))}   p99 ${fmt(percentile(r.relet, 99))}   max ${fmt(Math.max(...r.relet))}   ${within}/${r.withheldCount} within LEASE_MS + 1 s`,
    );
  }
  const la = r.leaseAnswer.ms;
  const p99 = percentile(la, 99);
  console.log(
    `  relay lease answer  p50 ${fmt(percentile(la, 50))}   p99 ${fmt(p99)}   max ${fmt(Math.max(...la))}   (${la.length} first leases; goal p99 <= 100 ms: ${p99 <= 100 ? "pass" : "FAIL"})`,
  );
  const { start, rest } = r.leaseAnswer;
  if (start.length > 0) {
    const wave = startWaveBound(start.length, la.length, 100);
    console.log(
      `    the block's start   ${start.length} leases to workers waiting when it moved to proving: p50 ${fmt(percentile(start, 50))}   p99 ${fmt(percentile(start, 99))}   max ${fmt(Math.max(...start))}; the other ${rest.length}: p50 ${fmt(percentile(rest, 50))}   p99 ${fmt(percentile(rest, 99))}   (a p99 within 100 ms needs ${wave.within} of the wave answered within 100 ms of the move: at most ${wave.msPerLease.toFixed(3)} ms of the relay's core a lease, and ${(wave.msPerLease * os.availableParallelism()).toFixed(3)} ms of the machine's ${os.availableParallelism()} cores for every process's share of it)`,
    );
  }
  // A job leased with a result (its answer's next): its answer also waited for the result's
  // check, completion and record, where a lease request's did not.
  const wr = r.leaseAnswer.withResult;
  if (wr.length > 0) {
    console.log(
      `    leased with a result  ${wr.length}   p50 ${fmt(percentile(wr, 50))}   p99 ${fmt(percentile(wr, 99))}   (the answer includes the result's own handling)`,
    );
  }
  console.log(`  worker stats        ${JSON.stringify(r.stats)}`);
  printLost(r);
  const c = r.cpuMsPerJob;
  const ms2 = (x: number, none: string) => (Number.isNaN(x) ? none : `${x.toFixed(2)} ms`);
  console.log(
    `  CPU per job         relay ${c.relay.toFixed(2)} ms   aggregator ${Number.isNaN(c.aggregator) ? "(in the relay)" : `${c.aggregator.toFixed(2)} ms`}   load generator ${c.workers.toFixed(2)} ms (simulated workers ${c.shards.toFixed(2)} over ${r.shards} ${r.shards === 1 ? "process" : "processes"}, the rest this one's)   (while proving${r.cold ? `, after ${warmupBlocks} warm-up ${warmupBlocks === 1 ? "block" : "blocks"}` : ""})`,
  );
  console.log(
    `    services          Redis ${ms2(c.redis, "(not on this machine)")}   Postgres ${ms2(c.postgres, "(not on this machine)")}   whole machine ${ms2(c.machine, "(unknown)")} (every process, all ${os.availableParallelism()} cores together)`,
  );
  if (!Number.isNaN(c.relayWrites)) {
    console.log(
      `    relay syscalls    ${c.relayWrites.toFixed(2)} writes and ${c.relayReads.toFixed(2)} reads a job (every read and write system call of the relay processes: their sockets to Redis, Postgres and the workers, and their threads' wake-ups; each one a crossing into the kernel)`,
    );
  }
  if (r.cold) {
    const k = r.cold.cpuMsPerJob;
    console.log(
      `  CPU per job, cold   relay ${k.relay.toFixed(2)} ms   aggregator ${Number.isNaN(k.aggregator) ? "(in the relay)" : `${k.aggregator.toFixed(2)} ms`}   load generator ${k.workers.toFixed(2)} ms   (the first warm-up block, ${r.cold.txs} txs / ${r.cold.jobs} jobs, on processes just started: V8 still compiling their hot paths)`,
    );
  }
  // The aggregator's share that is its fan-out, and how that fell over its trees (a long-running
  // aggregator adds one a block).
  const lastFanOut = r.fanOuts[r.fanOuts.length - 1];
  if (!Number.isNaN(c.aggregator) && lastFanOut) {
    const perJob = r.fanOuts.map((f) => (f.cpuMs / f.jobs).toFixed(2));
    console.log(
      `  aggregator fan-out  ${fmt(lastFanOut.cpuMs)} of CPU to close the auction and add the tree: ${perJob[perJob.length - 1]} ms of the aggregator's ${c.aggregator.toFixed(2)} ms a job${perJob.length > 1 ? `   (per job on its trees so far, warm-up first: ${perJob.join(", ")} ms)` : ""}`,
    );
  }
  // Whether this machine could serve the fleet at full speed at all: every worker back for its
  // next base job as soon as it proves one asks for workers / base duration jobs a second.
  const demand = (workerCount * 1000) / durations.base;
  const perJob = Number.isNaN(c.machine)
    ? c.relay + (Number.isNaN(c.aggregator) ? 0 : c.aggregator) + c.workers
    : c.machine;
  const cores = os.availableParallelism();
  console.log(
    `  capacity            ${workerCount} workers on ${durations.base} ms base jobs ask for up to ${Math.round(demand)} jobs/s; one relay core serves ${Math.round(1000 / c.relay)} jobs/s at ${c.relay.toFixed(2)} ms a job; at ${perJob.toFixed(2)} ms of CPU a job (${Number.isNaN(c.machine) ? "relay + aggregator + generator; Postgres and Redis not counted" : "the whole machine's"}) full demand needs ${((demand * perJob) / 1000).toFixed(1)} cores, this machine has ${cores}${floor ? ` (BullMQ's own floor, ${floor.cpuMsPerJob.toFixed(2)} ms a job, would need ${((demand * floor.cpuMsPerJob) / 1000).toFixed(1)})` : ""}`,
  );
  // The burst model: equal base jobs that started together end together, and one relay core
  // handles their results (each with the worker's next lease) one after another, so a round ends
  // only once its whole wave is handled: about one relay CPU-per-job per base job beyond the
  // tighter bound. A model from this run's measured relay CPU, not a measurement.
  const burst = ideal.tight + ideal.bases * c.relay;
  const budget = (0.25 * ideal.tight) / ideal.bases;
  console.log(
    `  burst model         tighter bound + ${ideal.bases} base results × ${c.relay.toFixed(2)} ms of relay CPU each = ${fmt(burst)} (measured ${fmt(r.makespan)}); within 1.25× the bound needs at most ${budget.toFixed(2)} ms a job on the relay's core, or the waves shared by more relay processes`,
  );
  console.log(closedLoopLine(r.leaseAnswer.base, c, cores, ideal.bases));
  if (o.timeline) {
    console.log(
      `  between jobs        p50 ${fmt(percentile(r.idle, 50))}   p90 ${fmt(percentile(r.idle, 90))}   p99 ${fmt(percentile(r.idle, 99))}   (a worker's next lease after its proof time)`,
    );
    for (const line of r.timeline.lines) console.log(line);
  }
  if (floor && label === "honest") printFloor(floor, r);
}
if (floor) {
  console.log(
    `\n[BullMQ floor: the same tree by BullMQ's own in-process workers, concurrency ${workerCount}, no HTTP]`,
  );
  console.log(
    `  makespan            ${fmt(floor.makespanMs)} from the tree in Redis (as ours: from the move to proving, after the fan-out; adding it took ${fmt(floor.addMs)} more)   ratio to the tighter bound ${(floor.makespanMs / ideal.tight).toFixed(3)}, to the schedule bound ${(floor.makespanMs / ideal.scheduled).toFixed(3)}   CPU per job ${floor.cpuMsPerJob.toFixed(2)} ms (this process: BullMQ's workers and producer, the add included)`,
  );
}
process.exit(0);
