// bench:bids — pre-signed quotes sent over loopback HTTP to a relay (its own process) backed by
// real Redis and Postgres. For each signature path (native secp256k1, then pure-JS viem), in
// the same run: (1) a fixed 1,000 bids/s, after a second of warm-up at that rate, in `--runs`
// runs (5 by default) one after another, each with its own p99 (the goal: p99 <= 50 ms in at
// least 4 of 5 runs) and the relay's and the load generator's own view of the run (event-loop
// delay, GC, group commits, late sends); (2) saturation: as many bids as the relay accepts with
// 128 requests in flight, for a fixed time, with the CPU per accepted bid of every process.
// Then it kills the relay (SIGKILL) in the middle of a burst of bids and checks that every bid
// answered 202, in any phase, is in Postgres: an accepted bid is already durable.
import { createRequire } from "node:module";
import os from "node:os";
import { hashQuote, txsHash } from "@prover-boost/core";
import { quoteMessage, RelayClient, RelayError, signAuction } from "@prover-boost/sdk";
import { Command } from "commander";
import pg from "pg";
import { Pool } from "undici";
import { encodePacked, getAddress, type Hex, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { LoopDelay } from "./lib/loop-delay.ts";
import {
  BENCH_DATABASE_URL,
  BENCH_DOMAIN,
  cpuOfCommand,
  cpuOfCommandSince,
  cpuSecondsOf,
  machineCpu,
  percentile,
  startStackProcess,
} from "./lib/stack-process.ts";

interface Secp {
  ecdsaSign(msg: Uint8Array, key: Uint8Array): { signature: Uint8Array; recid: number };
}
const secp = createRequire(import.meta.url)("secp256k1") as Secp;

const program = new Command("bench:bids")
  .option("--seconds <n>", "duration of each phase", "8")
  .option("--concurrency <n>", "requests in flight in the saturation phase", "128")
  .option("--rate <n>", "bids per second in the fixed-rate phase", "1000")
  .option("--runs <n>", "fixed-rate runs, one after another on the same relay", "5")
  .option("--provers <n>", "distinct provers", "800")
  .option("--auctions <n>", "open auctions", "100")
  .option("--only <path>", "run only 'native' or 'js'")
  .option(
    "--no-crash",
    "skip the kill mid-burst: the relay is stopped gently, so BENCH_NODE_ARGS=--cpu-prof writes its profile (the run then fails: durability not tested)",
  )
  .parse();
const o = program.opts();
const seconds = Number(o.seconds);
// The fixed-rate phase starts with this much warm-up at the same rate (not measured), so the
// relay's bid path is compiled and its caches filled before the latency counts.
const WARMUP_SECONDS = 1;
// Every bid is a fresh (prover, auction) pair; the fixed-rate phase needs that many, and the
// saturation phase some more.
const runs = Math.max(1, Number(o.runs));
const fixedPerRun = Math.round(Number(o.rate) * seconds);
const warmCount = Math.round(Number(o.rate) * WARMUP_SECONDS);
const fixedCount = warmCount + runs * fixedPerRun;
/** The fixed-rate goal: p99 at or under this many ms. */
const P99_GOAL_MS = 50;
// Quotes held back for the crash burst: far more than half a second at full speed needs, so the
// relay is always killed while bids are still being sent.
const CRASH_QUOTES = 5000;
if (Number(o.provers) * Number(o.auctions) <= fixedCount + CRASH_QUOTES) {
  program.error(
    `--provers × --auctions (${Number(o.provers) * Number(o.auctions)} fresh bids) must exceed --rate × (--seconds × --runs + ${WARMUP_SECONDS}) + ${CRASH_QUOTES} (${fixedCount + CRASH_QUOTES})`,
  );
}
const domain = BENCH_DOMAIN;
const sequencer = privateKeyToAccount(`0x${"5e".repeat(32)}`);
const ADMIN = "bench-admin-token";

const proverKeys = Array.from({ length: Number(o.provers) }, (_, i) =>
  keccak256(encodePacked(["string", "uint256"], ["bench-prover", BigInt(i)])),
);
const proverAddresses = proverKeys.map((k) => privateKeyToAccount(k).address);

interface Signed {
  body: string;
  /** The quote's digest: the bidId the relay answers with. */
  id: Hex;
}

/** One fresh (prover, block) pair per quote, so every bid is a new reservation. */
function presign(count: number, offset: number, slot: number): Signed[] {
  const out: Signed[] = [];
  const auctions = Number(o.auctions);
  for (let n = offset; n < offset + count; n++) {
    const p = n % proverKeys.length;
    const block = 1 + (Math.floor(n / proverKeys.length) % auctions);
    const quote = {
      epochToProve: block,
      validUntilSlot: slot + 10_000,
      bondAmount: String(1000 + (n % 97)),
      prover: proverAddresses[p]!,
      basisPointFee: 100 + (n % 4000),
    };
    const digest = hashQuote(domain, quoteMessage({ ...quote, prover: getAddress(quote.prover) }));
    const { signature, recid } = secp.ecdsaSign(
      Buffer.from(digest.slice(2), "hex"),
      Buffer.from(proverKeys[p]!.slice(2), "hex"),
    );
    const sig = `0x${Buffer.from(signature).toString("hex")}${(27 + recid).toString(16)}` as Hex;
    out.push({ body: JSON.stringify({ quote, signature: sig }), id: digest });
  }
  return out;
}

let http: Pool;

/** Status 0 stands for a connection error (counted, not thrown). `sentAt` is when it was sent. */
async function post(body: string): Promise<{ status: number; ms: number; sentAt: number }> {
  const sentAt = performance.now();
  try {
    const res = await http.request({
      method: "POST",
      path: "/v1/bids",
      headers: { "content-type": "application/json" },
      body,
    });
    await res.body.dump();
    return { status: res.statusCode, ms: performance.now() - sentAt, sentAt };
  } catch {
    return { status: 0, ms: performance.now() - sentAt, sentAt };
  }
}

/** Ids of every bid answered 202, in all phases (checked against Postgres at the end). */
const acceptedIds: Hex[] = [];

/**
 * As many bids as the relay takes with `--concurrency` in flight, until `seconds` have passed
 * (or, with `stopOnError`, until the relay stops answering).
 */
async function saturate(quotes: Signed[], stopOnError = false) {
  const until = performance.now() + seconds * 1000;
  let next = 0;
  let down = false;
  const lat: number[] = [];
  const statuses = new Map<number, number>();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Number(o.concurrency) }, async () => {
      while (performance.now() < until && next < quotes.length && !down) {
        const q = quotes[next++]!;
        const r = await post(q.body);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status === 202) {
          lat.push(r.ms);
          acceptedIds.push(q.id);
        }
        if (r.status === 0 && stopOnError) down = true;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { accepted: lat.length, perSecond: lat.length / elapsed, lat, statuses, used: next };
}

/**
 * Sends bids on a fixed schedule (bid i is due at start + i / rate, whatever the answers do) and
 * measures each latency twice: from the moment the request was actually sent, and from the moment
 * it was due (so a load generator that falls behind its schedule shows up, not hides). Also
 * records how late the sends were and this process's own event-loop delay.
 */
async function fixedRate(quotes: Signed[], rate: number, duration: number) {
  const lat: number[] = [];
  const latDue: number[] = [];
  let lateSends = 0;
  let maxLate = 0;
  const statuses = new Map<number, number>();
  const total = Math.min(quotes.length, Math.round(rate * duration));
  const loop = new LoopDelay(1);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      post(quotes[i]!.body).then((r) => {
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        const late = r.sentAt - due;
        if (late > 5) lateSends++;
        if (late > maxLate) maxLate = late;
        if (r.status === 202) {
          lat.push(r.ms);
          latDue.push(r.ms + Math.max(0, late));
          acceptedIds.push(quotes[i]!.id);
        }
      }),
    );
  }
  await Promise.all(inflight);
  loop.stop();
  const { max: loaderLoopMaxMs, p99: loaderLoopP99Ms } = loop.read();
  const elapsed = (performance.now() - start) / 1000;
  return {
    accepted: lat.length,
    perSecond: lat.length / elapsed,
    lat,
    latDue,
    statuses,
    used: total,
    lateSends,
    maxLate,
    loaderLoopMaxMs,
    loaderLoopP99Ms,
  };
}

/** prom-client's event-loop sampling interval (its default): its lag gauges include it. */
const PROM_LOOP_RESOLUTION_MS = 10;

/**
 * What the relay says about itself over a phase, from its /metrics: the largest and the 99th
 * percentile event-loop delay (prom-client resets its histogram at each scrape, so scrape once
 * before the phase; less its sampling interval, as loop-delay.ts), garbage-collection time, and
 * the bid writes (group commits) and their size.
 */
async function relayStats(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (re: RegExp) => [...text.matchAll(re)].reduce((sum, m) => sum + Number(m[1]), 0);
  const lateMs = (seconds: number) => Math.max(0, seconds * 1000 - PROM_LOOP_RESOLUTION_MS);
  return {
    loopMaxMs: lateMs(value(/^prover_boost_relay_nodejs_eventloop_lag_max_seconds (\S+)$/gm)),
    loopP99Ms: lateMs(value(/^prover_boost_relay_nodejs_eventloop_lag_p99_seconds (\S+)$/gm)),
    gcMs: value(/^prover_boost_relay_nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm) * 1000,
    gcCount: value(/^prover_boost_relay_nodejs_gc_duration_seconds_count\{[^}]*\} (\S+)$/gm),
    // Collections over 10 ms (prom-client's buckets: 1, 10, 100 ms, ...), and the full
    // (mark-sweep-compact) ones, which hold the event loop longest.
    gcLong:
      value(/^prover_boost_relay_nodejs_gc_duration_seconds_count\{[^}]*\} (\S+)$/gm) -
      value(/^prover_boost_relay_nodejs_gc_duration_seconds_bucket\{le="0\.01"[^}]*\} (\S+)$/gm),
    gcMajorMs:
      value(/^prover_boost_relay_nodejs_gc_duration_seconds_sum\{kind="major"\} (\S+)$/gm) * 1000,
    writes: value(/^prover_boost_group_commit_batch_size_count\{writer="bids"\} (\S+)$/gm),
    written: value(/^prover_boost_group_commit_batch_size_sum\{writer="bids"\} (\S+)$/gm),
    // The bid writes' times, from a write's start to its bids' results (timed in the relay, so
    // with its pool, driver and event loop): how many ended, and within 25 and 50 ms.
    timed: value(/^prover_boost_group_commit_write_seconds_count\{writer="bids"\} (\S+)$/gm),
    writesUnder25: value(
      /^prover_boost_group_commit_write_seconds_bucket\{le="0\.025",writer="bids"\} (\S+)$/gm,
    ),
    writesUnder50: value(
      /^prover_boost_group_commit_write_seconds_bucket\{le="0\.05",writer="bids"\} (\S+)$/gm,
    ),
    writeMs: value(/^prover_boost_group_commit_write_seconds_sum\{writer="bids"\} (\S+)$/gm) * 1000,
  };
}

/** One fixed-rate run with the relay's own view of it (event loop, GC, group commits). */
async function fixedRun(url: string, relayPid: number, quotes: Signed[]) {
  const before = await relayStats(url);
  const r = await measureCpu(relayPid, () => fixedRate(quotes, Number(o.rate), seconds));
  const after = await relayStats(url);
  return {
    ...r,
    p50: percentile(r.lat, 50),
    p99: percentile(r.lat, 99),
    p99Due: percentile(r.latDue, 99),
    relayLoopMaxMs: after.loopMaxMs,
    relayLoopP99Ms: after.loopP99Ms,
    relayGcMs: after.gcMs - before.gcMs,
    relayGcCount: after.gcCount - before.gcCount,
    relayGcLong: after.gcLong - before.gcLong,
    relayGcMajorMs: after.gcMajorMs - before.gcMajorMs,
    writes: after.writes - before.writes,
    meanBatch: (after.written - before.written) / (after.writes - before.writes),
    writeMeanMs: (after.writeMs - before.writeMs) / (after.timed - before.timed),
    writesOver25: after.timed - before.timed - (after.writesUnder25 - before.writesUnder25),
    writesOver50: after.timed - before.timed - (after.writesUnder50 - before.writesUnder50),
  };
}

/**
 * Runs a phase and adds the CPU time per accepted bid (µs) of the relay, of this process (the
 * load generator), and of the Postgres and Redis servers (all their processes, so this includes
 * whatever else used them meanwhile).
 */
async function measureCpu<T extends { accepted: number }>(
  relayPid: number,
  phase: () => Promise<T>,
) {
  const relay0 = cpuSecondsOf(relayPid);
  const pg0 = cpuOfCommand("postgres");
  const redis0 = cpuOfCommand("redis-server");
  const machine0 = machineCpu();
  const self0 = process.cpuUsage();
  const r = await phase();
  const self = process.cpuUsage(self0);
  const machine1 = machineCpu();
  const perBid = (seconds: number) => (seconds * 1e6) / r.accepted;
  return {
    ...r,
    relayUs: perBid(cpuSecondsOf(relayPid) - relay0),
    loaderUs: (self.user + self.system) / r.accepted,
    postgresUs: perBid(cpuOfCommandSince("postgres", pg0)),
    redisUs: perBid(cpuOfCommandSince("redis-server", redis0)),
    // Everything the machine did per bid (the kernel's network stack included), and how busy it was.
    machineUs: machine0 && machine1 ? perBid(machine1.busy - machine0.busy) : Number.NaN,
    machineBusy:
      machine0 && machine1
        ? (machine1.busy - machine0.busy) / (machine1.total - machine0.total)
        : Number.NaN,
  };
}

/**
 * The setup's admin calls (deposits, auctions) retried while the relay answers a retryable error
 * (a 503 while the shared machine's Postgres is out of connections): setup is not measured. An
 * auction found to exist on a retry was opened by the attempt whose answer was lost.
 */
async function setupCall(call: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await call();
      return;
    } catch (err) {
      if (attempt > 1 && err instanceof RelayError && err.code === "AUCTION_EXISTS") return;
      if (!(err instanceof RelayError && err.retryable) || attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, err.retryAfterMs ?? 1000));
    }
  }
}

async function runPath(path: "native" | "js") {
  const stack = await startStackProcess(
    { SEQUENCERS: sequencer.address, ADMIN_TOKEN: ADMIN, SIGNATURE_BACKEND: path },
    "none",
  );
  try {
    const admin = new RelayClient({ baseUrl: stack.url, adminToken: ADMIN });
    for (let i = 0; i < proverAddresses.length; i += 32) {
      await Promise.all(
        proverAddresses.slice(i, i + 32).map((a) => setupCall(() => admin.deposit(a, 10n ** 24n))),
      );
    }
    const now = Date.now();
    const slot = Math.floor(now / 12_000);
    for (let b = 1; b <= Number(o.auctions); b++) {
      const txs = [keccak256(toHex(`bench-${b}`))];
      const auction = {
        blockNumber: b,
        slot,
        txCount: 1,
        txsHash: txsHash(txs),
        blockReward: "1000000000000000000",
        minBond: "1000",
        maxFeeBps: 5000,
        biddingClosesAt: now + 3_600_000,
        proofDeadline: now + 7_200_000,
      };
      const signature = await signAuction(sequencer, domain, auction);
      await setupCall(() => admin.openAuction(auction, txs, signature));
    }
    const capacity = proverKeys.length * Number(o.auctions);
    const satCount = Math.min(
      capacity - fixedCount - CRASH_QUOTES,
      path === "native" ? 6000 * seconds : 1500 * seconds,
    );
    const t = performance.now();
    const satQuotes = presign(satCount, 0, slot);
    const rateQuotes = presign(fixedCount, satCount, slot);
    const crashQuotes = presign(CRASH_QUOTES, satCount + fixedCount, slot);
    const signMs = performance.now() - t;
    http = new Pool(stack.url, { connections: Math.max(128, Number(o.concurrency)) });
    // The fixed rate first, in steady state (after its warm-up), not in the wake of saturation:
    // `runs` runs one after another, each measured on its own.
    await fixedRate(rateQuotes.slice(0, warmCount), Number(o.rate), WARMUP_SECONDS);
    const fixed = [];
    for (let i = 0; i < runs; i++) {
      const from = warmCount + i * fixedPerRun;
      fixed.push(await fixedRun(stack.url, stack.pid, rateQuotes.slice(from, from + fixedPerRun)));
    }
    const sat = await measureCpu(stack.pid, () => saturate(satQuotes));
    // The crash: bids at full speed again, and the relay killed without warning half a second in.
    const crash = o.crash
      ? await (async () => {
          const burst = saturate(crashQuotes, true);
          await new Promise((r) => setTimeout(r, 500));
          process.kill(stack.pid, "SIGKILL");
          return burst;
        })()
      : { accepted: 0, statuses: new Map<number, number>() };
    await http.close();
    const db = new pg.Client({ connectionString: BENCH_DATABASE_URL });
    await db.connect();
    const found = Number(
      (
        await db.query(
          `SELECT count(*)::int AS n FROM "${stack.schema}"."Bid" WHERE id = ANY ($1)`,
          [acceptedIds],
        )
      ).rows[0].n,
    );
    await db.end();
    const accepted = acceptedIds.length;
    acceptedIds.length = 0;
    return {
      sat,
      fixed,
      crash,
      accepted,
      found,
      signMs,
      presigned: satQuotes.length + rateQuotes.length + crashQuotes.length,
    };
  } finally {
    await stack.stop();
  }
}

/** The kill cut the burst: some bids were accepted before it and some requests failed at it. */
const crashLanded = (r: { crash: { accepted: number; statuses: Map<number, number> } }) =>
  r.crash.accepted > 0 && (r.crash.statuses.get(0) ?? 0) > 0;
const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "-");
const statusLine = (m: Map<number, number>) => [...m].map(([s, n]) => `${s}×${n}`).join(" ");
console.log(
  `bench:bids — ${o.provers} provers × ${o.auctions} auctions, ${seconds} s per phase, relay in its own process on Postgres + Redis`,
);
const results: Record<string, Awaited<ReturnType<typeof runPath>>> = {};
for (const path of ["native", "js"] as const) {
  if (o.only && o.only !== path) continue;
  const r = await runPath(path);
  results[path] = r;
  console.log(
    `\n[signature path: ${path}]   (${r.presigned} quotes pre-signed in ${Math.round(r.signMs)} ms)`,
  );
  console.log(
    `  saturation (${o.concurrency} in flight): ${fmt(r.sat.perSecond)} accepted bids/s   p50 ${fmt(percentile(r.sat.lat, 50))} ms   p99 ${fmt(percentile(r.sat.lat, 99))} ms   [${statusLine(r.sat.statuses)}]`,
  );
  console.log(
    `  CPU per accepted bid at saturation: relay ${fmt(r.sat.relayUs)} µs, load generator ${fmt(r.sat.loaderUs)} µs, Postgres ${fmt(r.sat.postgresUs)} µs, Redis ${fmt(r.sat.redisUs)} µs; whole machine ${fmt(r.sat.machineUs)} µs (${os.cpus().length} cores ${fmt(100 * r.sat.machineBusy)}% busy)`,
  );
  console.log(
    `  fixed ${o.rate} bids/s, ${runs} runs of ${seconds} s (latency from the actual send; "due": from the scheduled send):`,
  );
  for (const [i, f] of r.fixed.entries()) {
    console.log(
      `    run ${i + 1}: ${fmt(f.perSecond)} accepted/s   p50 ${fmt(f.p50)} ms   p99 ${fmt(f.p99)} ms (due ${fmt(f.p99Due)})   [${statusLine(f.statuses)}]   relay: loop delay p99 ${fmt(f.relayLoopP99Ms)} max ${fmt(f.relayLoopMaxMs)} ms, GC ${fmt(f.relayGcMs)} ms in ${f.relayGcCount} (${f.relayGcLong} over 10 ms, full ones ${fmt(f.relayGcMajorMs)} ms), ${f.writes} writes of ${fmt(f.meanBatch)} bids (from a write's start to its bids' results: mean ${fmt(f.writeMeanMs)} ms, ${f.writesOver25} over 25 ms, ${f.writesOver50} over 50 ms), CPU ${fmt(f.relayUs)} µs/bid; load generator: loop delay max ${fmt(f.loaderLoopMaxMs)} ms, ${f.lateSends} sends >5 ms late (max ${fmt(f.maxLate)} ms); machine ${fmt(100 * f.machineBusy)}% busy`,
    );
  }
  const met = r.fixed.filter((f) => f.p99 <= P99_GOAL_MS).length;
  console.log(
    `  p99 <= ${P99_GOAL_MS} ms in ${met} of ${runs} runs (p99 by run: ${r.fixed.map((f) => fmt(f.p99)).join(", ")} ms)`,
  );
  console.log(
    crashLanded(r)
      ? `  durability: relay killed (SIGKILL) mid-burst after ${r.crash.accepted} more 202s [${statusLine(r.crash.statuses)}]; ${r.found} of the ${r.accepted} bids answered 202 are in Postgres (${r.found === r.accepted ? "all" : "SOME LOST"})`
      : o.crash
        ? `  durability NOT TESTED: the kill did not land while bids were being accepted [${statusLine(r.crash.statuses)}]`
        : `  durability NOT TESTED (--no-crash); ${r.found} of the ${r.accepted} bids answered 202 are in Postgres`,
  );
}
if (results.native && results.js) {
  console.log(
    `\nnative / js accepted bids/s at saturation: ${(results.native.sat.perSecond / results.js.sat.perSecond).toFixed(2)}x`,
  );
}
// A lost accepted bid fails the run.
process.exit(Object.values(results).every((r) => crashLanded(r) && r.found === r.accepted) ? 0 : 1);
