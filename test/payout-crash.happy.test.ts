// Exactly-once payouts across a real crash. A block is driven to `proven` with no aggregator
// paying. A separate aggregator process (test/children/payout-aggregator.ts) starts paying it and
// is SIGKILLed inside the payout transaction, after the payout rows, the payout movement and the
// bond unlock were written but before the commit. Nothing of it may survive. A second process
// pays the block; each recipient is paid exactly once, and a third run changes nothing.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { blockPayouts, type JobType, planTree, weightedWork } from "@prover-boost/core";
import { accounts } from "@prover-boost/db";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid, snapshot } from "./fixtures.ts";
import {
  eventually,
  type Stack,
  sequencer,
  startStack,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
} from "./harness.ts";
import { testDomainEnv } from "./support/domain.ts";
import {
  BIDDING_MS,
  balance,
  expectLedgerConsistent,
  movements,
  proveInTurns,
  signIn,
  waitForStage,
} from "./support/market-flow.ts";

const BLOCK = 3;
const DEPOSIT = 50_000n;
const BOND = 7777n;
const FEE = 2500;
const REWARD = 1_000_000_000_000_000_003n;
/** A child process imports the whole aggregator through tsx: slow on a busy machine. */
const CHILD_TIMEOUT_MS = 180_000;

const root = fileURLToPath(new URL("..", import.meta.url));
const childScript = fileURLToPath(new URL("./children/payout-aggregator.ts", import.meta.url));

const winner = account(0xc1);
const loser = account(0xc2);

let stack: Stack;
const children: ChildProcess[] = [];

interface Child {
  proc: ChildProcess;
  lines: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts an aggregator process against the stack's schema and Redis prefix. */
function startChild(hang: boolean): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", childScript], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: stack.prefix,
      LEASE_MS: "2000",
      AGGREGATOR_TICK_MS: "50",
      PB_TEST_SCHEMA: stack.db.schema,
      PB_TEST_HANG: hang ? "1" : "0",
      ...testDomainEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  const lines: string[] = [];
  const stderr: string[] = [];
  let buf = "";
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { proc, lines, stderr, exited };
}

/** Whether the block's row is locked by another transaction right now (FOR UPDATE NOWAIT). */
async function blockRowLocked(): Promise<boolean> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query(
      `SELECT stage FROM "${stack.db.schema}"."Block" WHERE number = $1 FOR UPDATE NOWAIT`,
      [BLOCK],
    );
    return false;
  } catch (err) {
    if ((err as { code?: string }).code === "55P03") return true; // lock_not_available
    throw err;
  } finally {
    await client.query("ROLLBACK").catch(() => {});
    await client.end();
  }
}

const payoutRows = () =>
  stack.db.prisma.payout.findMany({ where: { blockNumber: BLOCK }, orderBy: { id: "asc" } });

beforeAll(async () => {
  stack = await startStack({ backend: "postgres", aggregator: false });
  await stack.admin.deposit(winner.address, DEPOSIT);
  await stack.admin.deposit(loser.address, DEPOSIT);
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await stack?.close();
});

describe("an aggregator killed inside the payout transaction", () => {
  it("drives the block to proven with no aggregator paying", async () => {
    const bidW = await signedBid(winner, BLOCK, {
      bondAmount: BOND.toString(),
      basisPointFee: FEE,
    });
    const bidL = await signedBid(loser, BLOCK, { bondAmount: "5000", basisPointFee: 2900 });
    const now = Date.now();
    const open = await openAuction(BLOCK, {
      biddingClosesAt: now + BIDDING_MS,
      proofDeadline: now + 600_000,
      blockReward: REWARD.toString(),
      txCount: 5,
    });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    await stack.client.submitBid(bidW.quote, bidW.signature);
    await stack.client.submitBid(bidL.quote, bidL.signature);
    // The in-process aggregator only ticks by hand: close and fan out.
    await eventually(
      async () => {
        await stack.aggregator.aggregator.tick();
        return (await stack.client.getBlock(BLOCK)).stage === "proving";
      },
      30_000,
      100,
    );
    const workers = [await signIn(stack, winner, "w-0"), await signIn(stack, winner, "w-1")];
    const block = await proveInTurns(stack, BLOCK, workers, "proven");
    expect(block.tree.proven).toBe(planTree(5).nodes.length);
    expect(block.payouts).toEqual([]);
    expect((await stack.client.getProver(winner.address)).collateral.locked).toBe(BOND.toString());
  });

  it(
    "rolls everything back when the process dies before the commit",
    async () => {
      const first = startChild(true);
      await eventually(async () => first.lines.includes(`ready ${BLOCK}`), 120_000, 50).catch(
        (err) => {
          throw new Error(`child never reached the payout hook: ${first.stderr.join("")}`, {
            cause: err,
          });
        },
      );
      // It is inside the transaction: the block row is locked, and nothing is visible outside.
      expect(await blockRowLocked()).toBe(true);
      expect(await payoutRows()).toEqual([]);

      first.proc.kill("SIGKILL");
      expect((await first.exited).signal).toBe("SIGKILL");

      // Postgres rolls the dead session's transaction back and releases the row.
      await eventually(async () => !(await blockRowLocked()), 30_000, 100);
      expect(await payoutRows()).toEqual([]);
      expect(await movements(stack.db.prisma, { blockNumber: BLOCK, kind: "payout" })).toEqual([]);
      expect(await movements(stack.db.prisma, { blockNumber: BLOCK, kind: "unlock" })).toEqual([]);
      const block = await stack.client.getBlock(BLOCK);
      expect(block.stage).toBe("proven");
      expect(block.stages.paid).toBeUndefined();
      expect(await balance(stack.db.prisma, accounts.earnings(sequencer.address))).toBe(0n);
      expect(await balance(stack.db.prisma, accounts.earnings(winner.address))).toBe(0n);
      expect(await balance(stack.db.prisma, accounts.rewards)).toBe(0n);
      expect((await stack.client.getProver(winner.address)).collateral.locked).toBe(
        BOND.toString(),
      );
      await expectLedgerConsistent(stack.db.prisma);
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    "pays every recipient exactly once after a restart",
    async () => {
      const second = startChild(false);
      const block = await waitForStage(stack, BLOCK, "paid", 120_000).catch((err) => {
        throw new Error(`second child did not pay: ${second.stderr.join("")}`, { cause: err });
      });
      second.proc.kill("SIGTERM");
      await second.exited;

      const jobs = await stack.db.prisma.proofJob.findMany({ where: { blockNumber: BLOCK } });
      const expected = blockPayouts({
        reward: REWARD,
        feeBps: FEE,
        submitterBps: 0,
        sequencer: sequencer.address,
        submitter: sequencer.address,
        work: weightedWork(jobs.map((j) => ({ operator: j.operator!, type: j.type as JobType }))),
      });
      expect(expected.map((p) => p.recipient).sort()).toEqual(
        [sequencer.address, winner.address].sort(),
      );

      const rows = await payoutRows();
      expect(rows).toHaveLength(expected.length);
      for (const e of expected) {
        const mine = rows.filter((r) => r.recipient === e.recipient && r.role === e.role);
        expect(mine, `${e.role} ${e.recipient}`).toHaveLength(1);
        expect(mine[0]!.amount.toFixed()).toBe(e.amount.toString());
      }
      expect(rows.reduce((s, r) => s + BigInt(r.amount.toFixed()), 0n)).toBe(REWARD);
      expect(block.payouts).toHaveLength(expected.length);

      // One payout movement, one unlock, and earnings equal to what was paid.
      const payouts = await movements(stack.db.prisma, { blockNumber: BLOCK, kind: "payout" });
      expect(payouts).toHaveLength(1);
      expect(Object.fromEntries(payouts[0]!.legs)).toEqual({
        [accounts.rewards]: -REWARD,
        ...Object.fromEntries(expected.map((e) => [accounts.earnings(e.recipient), e.amount])),
      });
      const unlocks = await movements(stack.db.prisma, { blockNumber: BLOCK, kind: "unlock" });
      expect(unlocks).toHaveLength(1);
      expect(Object.fromEntries(unlocks[0]!.legs)).toEqual({
        [accounts.locked(winner.address)]: -BOND,
        [accounts.available(winner.address)]: BOND,
      });
      for (const e of expected) {
        expect(await balance(stack.db.prisma, accounts.earnings(e.recipient))).toBe(e.amount);
      }
      const w = await stack.client.getProver(winner.address);
      expect(w.collateral).toMatchObject({
        locked: "0",
        available: DEPOSIT.toString(),
      });
      expect(w.earnings).toBe(expected.find((e) => e.role === "prover")!.amount.toString());
      expect(Object.keys(block.stages)).toEqual([
        "auction_open",
        "committed",
        "proving",
        "proven",
        "paid",
      ]);
      await expectLedgerConsistent(stack.db.prisma);
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    "changes nothing when the payout runs again",
    async () => {
      const before = await snapshot(stack);
      await stack.aggregator.aggregator.tick();
      await stack.aggregator.aggregator.tick();
      const third = startChild(false);
      await eventually(async () => third.lines.includes("started"), 120_000);
      // Give it a few of its own ticks (50 ms each) over the paid block.
      await new Promise((r) => setTimeout(r, 1000));
      third.proc.kill("SIGTERM");
      await third.exited;
      expect(await snapshot(stack)).toEqual(before);
    },
    CHILD_TIMEOUT_MS,
  );
});
