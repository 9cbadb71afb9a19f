// Crashes mid-tree, on real Redis and Postgres. (a) A worker pool in its own process is killed
// (SIGKILL) while it holds leases: the leases lapse, honest workers take over, the tree completes
// with the expected root and the block is paid. (b) The relay is closed mid-tree and a new one
// started on the same Redis prefix and database: old session tokens still work, a lease held
// across the restart can still be proven, no accepted proof is lost, and the root is the
// expected one.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { planTree } from "@prover-boost/core";
import { createRelay, type Relay } from "@prover-boost/relay";
import { type LeasedJob, RelayClient } from "@prover-boost/sdk";
import { simBackend, startWorkers, type WorkerPool } from "@prover-boost/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import {
  expectedProofs,
  expectedRoot,
  failedCount,
  openBlock,
  proofOf,
  proveUntilPaid,
  type Signed,
  signIn,
} from "./support/blocks.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const childScript = path.join(here, "children", "worker-child.ts");
const keyOf = (i: number) => `0x${i.toString(16).padStart(64, "0")}` as `0x${string}`;

/** A new relay on the stack's database and Redis prefix, started after the stack's own closed. */
async function startRelayAgain(stack: Stack): Promise<{ relay: Relay; url: string }> {
  const relay = await createRelay(stack.relay.env, { db: stack.db });
  await relay.app.listen({ port: 0, host: "127.0.0.1" });
  const address = relay.app.server.address();
  return {
    relay,
    url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`,
  };
}

/**
 * Closes the restarted relay and the stack. The harness's close() removes the Redis keys through
 * the first relay's (closed) connection, so they are removed through the second relay first.
 */
async function closeAfterRestart(stack: Stack | undefined, relay2: Relay | undefined) {
  if (relay2) {
    await relay2.ctx.fabric.obliterate().catch(() => {});
    await relay2.close();
  }
  await stack?.close();
}

interface ChildEvent {
  type: string;
  worker?: string;
  job?: { id: string };
}

describe("a worker process killed mid-tree", () => {
  const PENALTY = 7n;
  const blockNumber = 1;
  const opIndex = 0xd1;
  const op = account(opIndex);
  let stack: Stack;
  let child: ChildProcess | undefined;
  let honest: WorkerPool | undefined;

  beforeAll(async () => {
    stack = await startStack({
      env: { LEASE_MS: "2000", WITHHOLD_PENALTY_WEI: String(PENALTY), RATE_LIMIT_PER_IP: "0" },
    });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await honest?.stop({ graceMs: 0 });
    await stack?.close();
  });

  it("lets honest workers finish the tree after the crash; root and payout as expected", async () => {
    const { txs } = await openBlock(stack, blockNumber, { txCount: 12, winner: op });
    const total = planTree(12).nodes.length;

    // The operator's pool runs in a child process; each simulated proof takes ~300 ms.
    const inFlight = new Map<string, string>();
    const proven = new Set<string>();
    let stderr = "";
    child = spawn(process.execPath, ["--import", "tsx", childScript], {
      cwd: path.resolve(here, ".."),
      env: {
        ...process.env,
        RELAY_URL: stack.url,
        OPERATOR_KEY: keyOf(opIndex),
        WORKERS: "2",
        CAPACITY: "2",
        SIM_MS: "300",
        NAME_PREFIX: "crashy",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    let buffered = "";
    child.stdout!.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const e = JSON.parse(line) as ChildEvent;
        if (!e.job) continue;
        if (e.type === "leased") inFlight.set(e.job.id, e.worker!);
        else inFlight.delete(e.job.id);
        if (e.type === "proven") proven.add(e.job.id);
      }
    });

    // Kill it once it has proven some of the tree and holds leases on jobs it is proving.
    await eventually(
      async () => {
        if (child!.exitCode !== null) throw new Error(`worker child exited early: ${stderr}`);
        return proven.size >= 4 && inFlight.size >= 1;
      },
      60_000,
      5,
    );
    child.kill("SIGKILL");
    await once(child, "exit");
    const inFlightAtKill = new Map(inFlight);
    const atKill = await stack.client.getBlock(blockNumber);
    expect(atKill.stage).toBe("proving");
    expect(atKill.tree.proven).toBeLessThan(total);

    // The operator restarts its workers in-process (fast sim backend).
    honest = await startWorkers({
      relayUrl: stack.url,
      operatorKey: keyOf(opIndex),
      workers: 2,
      capacity: 2,
      waitMs: 1000,
      namePrefix: "honest",
      backend: simBackend({
        durationsMs: {
          base: 20,
          merge: 20,
          block_root: 20,
          single_tx_block_root: 20,
          empty_block_root: 20,
        },
      }),
    });
    const block = await eventually(
      async () => {
        const b = await stack.client.getBlock(blockNumber);
        // Lapsed leases go back to the queue; they never fail a job.
        if (b.stage !== "paid") expect(await failedCount(stack, blockNumber)).toBe(0);
        return b.stage === "paid" ? b : null;
      },
      60_000,
      100,
    );
    await honest.stop({ graceMs: 1000 });

    expect(block.rootProof).toBe(expectedRoot(blockNumber, txs));
    expect(block.payouts.filter((p) => p.role === "prover").map((p) => p.recipient)).toEqual([
      op.address,
    ]);
    const expected = expectedProofs(blockNumber, txs);
    const rows = await stack.db.prisma.proofJob.findMany({ where: { blockNumber } });
    expect(rows).toHaveLength(total);
    for (const r of rows) {
      expect(r.status).toBe("proven");
      expect(r.proof).toBe(expected.get(r.id));
    }
    // Every job the dead pool was proving was either handed in before it died, or its lease
    // lapsed: a withholding penalty on the crashed worker, and an honest worker proved it.
    const penalties = await stack.db.prisma.penalty.findMany({ where: { blockNumber } });
    expect(penalties.length).toBeGreaterThanOrEqual(1);
    for (const p of penalties) {
      expect(p.kind).toBe("withholding");
      expect(p.operator).toBe(op.address);
      expect(p.workerId).toMatch(/^crashy-/);
      expect(p.amount.toFixed()).toBe(PENALTY.toString());
    }
    for (const [id, worker] of inFlightAtKill) {
      const row = rows.find((r) => r.id === id)!;
      const penalized = penalties.some((p) => p.jobId === id && p.workerId === worker);
      if (penalized) expect(row.workerId).toMatch(/^honest-/);
      else expect(row.workerId).toBe(worker);
    }
    expect(rows.some((r) => r.workerId?.startsWith("honest-"))).toBe(true);
  });
});

describe("the relay restarted mid-tree", () => {
  const blockNumber = 5;
  const op = account(0xd2);
  let stack: Stack;
  let relay2: Relay | undefined;

  beforeAll(async () => {
    // Leases outlive the restart comfortably (the lease held across it must not lapse).
    stack = await startStack({ env: { LEASE_MS: "10000" } });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(() => closeAfterRestart(stack, relay2));

  it("keeps accepted proofs, honours old tokens and held leases, and finishes the tree", async () => {
    const { txs } = await openBlock(stack, blockNumber, { txCount: 8, winner: op });
    const total = planTree(8).nodes.length;
    const expected = expectedProofs(blockNumber, txs);
    const w1 = await signIn(stack, op, "before-1");
    const w2 = await signIn(stack, op, "before-2");

    // Part of the tree is proven before the restart, and w2 holds a lease across it.
    for (let n = 0; n < 6; n++) {
      const job = (await w1.client.lease(2000))!;
      await w1.client.submitResult(job.id, proofOf(job));
    }
    const held = (await w2.client.lease(2000))!;
    expect(held).not.toBeNull();
    const provenBefore = await stack.db.prisma.proofJob.findMany({
      where: { blockNumber, status: "proven" },
      orderBy: { id: "asc" },
    });
    expect(provenBefore).toHaveLength(6);

    await stack.relay.close();
    const restarted = await startRelayAgain(stack);
    relay2 = restarted.relay;
    const url2 = restarted.url;
    expect(url2).not.toBe(stack.url);
    const client2 = new RelayClient({ baseUrl: url2 });
    const reconnect = (w: Signed) => client2.withToken(w.token);

    // The old relay is gone; the new one knows the old tokens (sessions live in Postgres).
    await expect(w1.client.lease(0)).rejects.toThrow();
    const w1b = reconnect(w1);
    const w2b = reconnect(w2);
    // The lease w2 took before the restart is still its own: heartbeat and result work.
    const beat = await w2b.heartbeat(held.id);
    expect(beat.leaseExpiresAt).toBeGreaterThanOrEqual(held.leaseExpiresAt);
    await w2b.submitResult(held.id, proofOf(held));

    // A worker signing in after the restart and the reconnected ones finish the tree.
    const w3 = await signIn({ client: client2 }, op, "after-3");
    const seen: LeasedJob[] = [];
    const block = await proveUntilPaid({ client: client2 }, blockNumber, [w1b, w3.client], (j) => {
      seen.push(j);
      for (const c of j.children) expect(c.proof).toBe(expected.get(c.id));
    });
    expect(block.rootProof).toBe(expectedRoot(blockNumber, txs));
    expect(seen.length + 7).toBe(total);

    // Nothing accepted before the restart was lost or re-credited.
    const after = await stack.db.prisma.proofJob.findMany({
      where: { id: { in: provenBefore.map((r) => r.id) } },
      orderBy: { id: "asc" },
    });
    expect(after.map((r) => [r.id, r.status, r.proof, r.operator, r.workerId, r.provenAt])).toEqual(
      provenBefore.map((r) => [r.id, "proven", r.proof, r.operator, r.workerId, r.provenAt]),
    );
    const heldRow = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: held.id } });
    expect(heldRow).toMatchObject({ status: "proven", workerId: "before-2" });
    const all = await stack.db.prisma.proofJob.findMany({ where: { blockNumber } });
    expect(all.every((r) => r.status === "proven" && r.proof === expected.get(r.id))).toBe(true);
    expect((await client2.getBlock(blockNumber)).tree.proven).toBe(total);
    expect(await stack.db.prisma.penalty.count()).toBe(0);
  });
});

describe("a lease that ran out while the relay was down", () => {
  const blockNumber = 6;
  const op = account(0xd3);
  const PENALTY = 9n;
  let stack: Stack;
  let relay2: Relay | undefined;

  beforeAll(async () => {
    stack = await startStack({
      env: { LEASE_MS: "1000", WITHHOLD_PENALTY_WEI: String(PENALTY), RATE_LIMIT_PER_IP: "0" },
    });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(() => closeAfterRestart(stack, relay2));

  it("is not held against its worker: the job is re-issued without a penalty", async () => {
    await openBlock(stack, blockNumber, { txCount: 2, winner: op });
    const w1 = await signIn(stack, op, "down-1");
    const held = (await w1.client.lease(2000))!;
    // The relay is away for longer than LEASE_MS: nobody can take w1's heartbeats.
    await stack.relay.close();
    await new Promise((r) => setTimeout(r, 1500));
    const restarted = await startRelayAgain(stack);
    relay2 = restarted.relay;
    const client2 = new RelayClient({ baseUrl: restarted.url });
    // The lapse is found once the new relay looks at the block's queues (its first lease call):
    // the job goes to whoever asks next.
    const again = await signIn({ client: client2 }, op, "down-2");
    const job = await eventually(async () => {
      const j = await again.client.lease(500);
      if (j && j.id !== held.id) await again.client.submitResult(j.id, proofOf(j));
      return j?.id === held.id ? j : null;
    });
    await again.client.submitResult(job.id, proofOf(job));
    // The lapse has been handled (the job was re-issued); give its bookkeeping a moment.
    await new Promise((r) => setTimeout(r, 300));
    expect(await stack.db.prisma.penalty.count({ where: { blockNumber } })).toBe(0);
    // And w1, back too late, is told so: the lease is not its own any more.
    await expect(client2.withToken(w1.token).heartbeat(held.id)).rejects.toThrow();
  });
});
