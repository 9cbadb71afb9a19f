// The worker agent (its real command-line entry point, in a process of its own) stopped on real
// Redis and Postgres. SIGTERM mid-job: the agent stops leasing, lets the job run for its drain
// time, hands it back (released: counted toward no attempt cap or bar) and exits 0 inside
// SHUTDOWN_GRACE_MS; its operator is never penalized (no penalty row, collateral untouched, also
// after the lease would have lapsed) and another operator's worker proves the job. A job that
// ends inside the drain is finished and handed in instead. A second SIGTERM exits 1 at once. An
// uncaught exception is logged as one JSON line, then the agent closes and exits 1. A relay that
// no longer answers cannot hold the stop past the grace: the agent gives its hand-back up when
// the reserve for it runs out, and exits 0.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proveUntilPaid, signIn } from "./support/blocks.ts";
import { exitedOf, exitWithin } from "./support/exit.ts";
import { type FaultProxy, startFaultProxy } from "./support/fault-proxy.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..");
const cliScript = path.join(repoRoot, "apps", "worker", "src", "cli.ts");
const throwOnSignal = path.join(here, "children", "throw-on-signal.ts");

const LEASE_MS = 2000;
const PENALTY = 123n;
const DEPOSIT = 10n ** 17n;
// Longer than any test: a job the agent is proving is never finished before it is stopped.
const FOREVER_MS = 600_000;
const keyOf = (i: number) => `0x${i.toString(16).padStart(64, "0")}` as const;

interface AgentProcess {
  child: ChildProcess;
  /** Every stdout line, as written. */
  lines: string[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startAgent(
  stack: Stack,
  key: `0x${string}`,
  name: string,
  env: Record<string, string>,
  preload: string[] = [],
  proveMs = FOREVER_MS,
): AgentProcess {
  const durations = ["base", "merge", "block_root", "single_tx_block_root", "empty_block_root"]
    .map((t) => `${t}=${proveMs}`)
    .join(",");
  const child = spawn(
    process.execPath,
    ["--import", "tsx", ...preload.flatMap((p) => ["--import", p]), cliScript],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        RELAY_URL: stack.url,
        OPERATOR_KEY: key,
        WORKERS: "1",
        CAPACITY: "1",
        BACKEND: "sim",
        SIM_DURATIONS: durations,
        WAIT_MS: "1000",
        WORKER_NAME_PREFIX: name,
        // Debug adds one line per lease ("job leased"), which leasedBy waits for.
        LOG_LEVEL: "debug",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const exited = exitedOf(child);
  const lines: string[] = [];
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += String(d);
  });
  createInterface({ input: child.stdout! }).on("line", (line) => lines.push(line));
  return { child, lines, stderr: () => stderr, exited };
}

const entries = (p: AgentProcess) =>
  p.lines.map(
    (l) => JSON.parse(l) as Record<string, unknown> & { msg?: string; err?: { message?: string } },
  );
const logged = (p: AgentProcess, pattern: RegExp) =>
  entries(p).some((e) => pattern.test(String(e.msg)));

/** Resolves with the exit, or fails when the process is still running after a generous wait. */
const exitOf = (p: AgentProcess, waitMs?: number) => exitWithin(p.exited, "the agent", waitMs);

/**
 * The job the operator's agent holds, once the tree's record says it leased one and the agent has
 * read the lease answer (it logs it): the record and the answer go out separately, so a signal
 * sent on the record alone can reach an agent that has not heard of the job yet.
 */
async function leasedBy(stack: Stack, p: AgentProcess, operator: `0x${string}`) {
  return eventually(async () => {
    if (p.child.exitCode !== null) throw new Error(`the agent exited: ${p.stderr()}`);
    const row = await stack.db.prisma.proofJob.findFirst({ where: { operator, status: "leased" } });
    const heard = entries(p).some(
      (e) => e.msg === "job leased" && JSON.stringify(e.job).includes(`"${row?.id}"`),
    );
    return row && heard ? row : null;
  }, 90_000);
}

// Starting the agent compiles it first: slow on a busy machine, hence the long timeouts.
describe("stopping the worker agent", { timeout: 240_000 }, () => {
  let stack: Stack;
  let agent: AgentProcess | undefined;
  const opA = privateKeyToAccount(keyOf(0x5a1));
  const opB = privateKeyToAccount(keyOf(0x5b2));
  const opC = privateKeyToAccount(keyOf(0x5c3));
  const opE = privateKeyToAccount(keyOf(0x5e5));

  beforeAll(async () => {
    stack = await startStack({
      env: { LEASE_MS: String(LEASE_MS), WITHHOLD_PENALTY_WEI: String(PENALTY) },
    });
    for (const op of [opA, opB, opC, opE]) await stack.admin.deposit(op.address, DEPOSIT);
  });
  afterEach(async () => {
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill("SIGKILL");
    }
    if (agent) await agent.exited;
    agent = undefined;
  });
  afterAll(async () => stack?.close());

  it("hands a job back on SIGTERM, exits 0 inside the grace and is not penalized", async () => {
    await openBlock(stack, 1, { txCount: 2 });
    // Drain 2 s of the 4 s grace; the job would take 10 minutes.
    const a = startAgent(stack, keyOf(0x5a1), "leaving", { SHUTDOWN_GRACE_MS: "4000" });
    agent = a;
    const held = await leasedBy(stack, a, opA.address);
    a.child.kill("SIGTERM");
    expect(await exitOf(a)).toEqual({ code: 0, signal: null });
    const handedBack = entries(a).filter((e) => e.msg === "job handed back");
    expect(handedBack).toHaveLength(1);
    expect(JSON.stringify(handedBack[0]!.job)).toContain(held.id);
    expect(logged(a, /exiting/)).toBe(true);
    // A hand-back on shutdown is no fail: nothing counted toward the job's attempt cap, the
    // worker's or the operator's bars on it (the attempt book holds no entry for the job).
    const attempts = stack.relay.ctx.fabric.attempts;
    const worker = `${opA.address.toLowerCase()}/${held.workerId}`;
    expect(await attempts.jobFails(1, held.id)).toBe(0);
    expect(await attempts.fails(1, held.id, worker)).toBe(0);
    const book = await stack.relay.ctx.fabric.redis.hgetall(attempts.key(1));
    expect(Object.keys(book).filter((field) => field.includes(held.id))).toEqual([]);
    expect(
      await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: held.id } }),
    ).toMatchObject({ status: "queued" });
    // The drain the agent allowed the job fits inside the grace, with time left to hand it back.
    const drain = entries(a).find((e) => /letting in-flight jobs finish/.test(String(e.msg)));
    expect(drain).toMatchObject({ graceMs: 2000, inFlight: 1 });

    // Another operator's worker proves the job the agent gave back, and the block is paid.
    const w = await signIn(stack, opB, "staying");
    const seen: string[] = [];
    const block = await proveUntilPaid(stack, 1, [w.client], (job) => {
      seen.push(job.id);
    });
    expect(block.stage).toBe("paid");
    expect(seen).toContain(held.id);
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: held.id } });
    expect(row).toMatchObject({ status: "proven", operator: opB.address, workerId: w.workerId });

    // Well past the lease the agent held: still no withholding, no penalty, collateral intact.
    await new Promise((r) => setTimeout(r, LEASE_MS * 2));
    expect(await stack.db.prisma.penalty.count({ where: { operator: opA.address } })).toBe(0);
    const prover = await stack.client.getProver(opA.address);
    expect(prover.penalties).toBe(0);
    expect(prover.collateral.available).toBe(DEPOSIT.toString());
  });

  it("finishes a job that ends inside the drain, hands it in, and exits 0", async () => {
    await openBlock(stack, 3, { txCount: 2 });
    // A 2 s job and a drain of 115 s: the job ends long before the drain would.
    const e = startAgent(
      stack,
      keyOf(0x5e5),
      "finishing",
      { SHUTDOWN_GRACE_MS: "120000" },
      [],
      2000,
    );
    agent = e;
    const held = await leasedBy(stack, e, opE.address);
    e.child.kill("SIGTERM");
    expect(await exitOf(e, 180_000)).toEqual({ code: 0, signal: null });
    expect(logged(e, /proof accepted/)).toBe(true);
    expect(logged(e, /job handed back/)).toBe(false);
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: held.id } });
    expect(row).toMatchObject({ status: "proven", operator: opE.address });
    expect(await stack.db.prisma.penalty.count({ where: { operator: opE.address } })).toBe(0);
  });

  it("exits 1 at once on a second SIGTERM", async () => {
    await openBlock(stack, 2, { txCount: 2 });
    // The grace is long enough that only the second signal can end the drain in this test.
    const c = startAgent(stack, keyOf(0x5c3), "impatient", { SHUTDOWN_GRACE_MS: "600000" });
    agent = c;
    await leasedBy(stack, c, opC.address);
    c.child.kill("SIGTERM");
    await eventually(async () => logged(c, /shutting down/), 30_000);
    expect(c.child.exitCode).toBeNull();
    c.child.kill("SIGTERM");
    expect(await exitOf(c)).toEqual({ code: 1, signal: null });
    expect(logged(c, /second signal/)).toBe(true);
    expect(logged(c, /job handed back/)).toBe(false);
  });

  it("logs an uncaught exception as one JSON line, closes and exits 1", async () => {
    const d = startAgent(stack, keyOf(0x5d4), "crashing", {}, [throwOnSignal]);
    agent = d;
    await eventually(async () => {
      if (d.child.exitCode !== null) throw new Error(`the agent exited: ${d.stderr()}`);
      return logged(d, /signed in/);
    }, 90_000);
    d.child.kill("SIGUSR2");
    expect(await exitOf(d)).toEqual({ code: 1, signal: null });
    // Every stdout line is one JSON document; exactly one carries the error.
    const all = entries(d);
    const crash = all.filter((e) => e.err?.message === "injected failure");
    expect(crash).toHaveLength(1);
    expect(crash[0]!.msg).toMatch(/uncaught error/);
    expect(d.stderr()).not.toContain("injected failure");
    // The close ran after the error: the workers stopped and the agent said so.
    const at = all.indexOf(crash[0]!);
    expect(all.slice(at).some((e) => e.msg === "exiting")).toBe(true);
  });
});

describe("stopping the worker agent when the relay no longer answers", { timeout: 240_000 }, () => {
  let stack: Stack;
  let agent: AgentProcess | undefined;
  let proxy: FaultProxy | undefined;
  const op = privateKeyToAccount(keyOf(0x5f6));

  beforeAll(async () => {
    // Leases long enough that the agent still holds its job when the drain ends.
    stack = await startStack({ env: { LEASE_MS: "120000" } });
    await stack.admin.deposit(op.address, DEPOSIT);
  });
  afterAll(async () => {
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill("SIGKILL");
    }
    if (agent) await agent.exited;
    await proxy?.close();
    await stack?.close();
  });

  it("gives up handing its job back when the grace's reserve runs out, and exits 0 inside the grace", async () => {
    await openBlock(stack, 4, { txCount: 2 });
    proxy = await startFaultProxy(stack.url);
    // 6 s of grace: 3 s of drain, then 1.5 s for the hand-back and 0.75 s for the sign-out.
    const a = startAgent(stack, keyOf(0x5f6), "cut-off", {
      RELAY_URL: proxy.url,
      SHUTDOWN_GRACE_MS: "6000",
    });
    agent = a;
    const held = await leasedBy(stack, a, op.address);
    // Every byte between the agent and the relay is held from now on (a hung relay or link).
    proxy.stall();
    a.child.kill("SIGTERM");
    // Without a bound of its own, the hand-back would try for 10 s and the grace's deadline
    // would end the process with status 1.
    expect(await exitOf(a)).toEqual({ code: 0, signal: null });
    expect(logged(a, /could not hand the job back/)).toBe(true);
    // Told as the lost lease it will be, not as a job handed back.
    expect(logged(a, /job handed back/)).toBe(false);
    expect(entries(a).find((e) => e.msg === "exiting")).toMatchObject({ failed: 0, lost: 1 });
    expect(logged(a, /shutdown deadline passed/)).toBe(false);
    const over = entries(a).find((e) => /grace period over/.test(String(e.msg)));
    expect(over).toMatchObject({ jobs: 1, handBackMs: 1500 });
    // The relay never heard the hand-back: the job is still leased to the agent's session. (The
    // proxy stays stalled: restored, it would deliver the held requests.)
    const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: held.id } });
    expect(row.status).toBe("leased");
  });
});
