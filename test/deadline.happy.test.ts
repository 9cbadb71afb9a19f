// A missed proof deadline end to end on real Redis and Postgres. Operator A wins the auction,
// leases one job and goes silent; at the proof deadline the block moves to deadline_missed, A's
// bond is slashed (SLASH_TO_SEQUENCER_BPS to the sequencer's earnings, the rest burned) and the
// block opens to everyone. Operators B and C prove it; the reward goes to them by weighted work,
// never to A, and A's slashed bond is never returned.
import { blockPayouts, type JobType, planTree, type Stage, weightedWork } from "@prover-boost/core";
import { accounts } from "@prover-boost/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { eventually, type Stack, sequencer, startStack } from "./harness.ts";
import {
  BIDDING_MS,
  balance,
  expectLedgerConsistent,
  follow,
  getJson,
  movements,
  type PageOf,
  type PenaltyItem,
  proveInTurns,
  type SseEvent,
  signIn,
  stagesOf,
  waitForStage,
} from "./support/market-flow.ts";
import { parseProm, sumOf } from "./support/prom-text.ts";

const BLOCK = 7;
const DEPOSIT = 1_000_000n;
/** Odd, so the sequencer's half rounds down and the odd wei is burned. */
const BOND = 10_001n;
const TO_SEQUENCER = (BOND * 5000n) / 10_000n; // SLASH_TO_SEQUENCER_BPS default 5000
const BURNED = BOND - TO_SEQUENCER;
const REWARD = 1_000_000_000_000_000_007n;
const FEE_A = 1000;

const opA = account(0xd1);
const opB = account(0xd2);
const opC = account(0xd3);

let stack: Stack;
let leasedByA: string;
const events: SseEvent[] = [];
let streamed: Promise<void> | null = null;

beforeAll(async () => {
  stack = await startStack({ env: { LEASE_MS: "1000", WITHHOLD_PENALTY_WEI: "0" } });
  for (const op of [opA, opB, opC]) await stack.admin.deposit(op.address, DEPOSIT);
});
afterAll(async () => stack?.close());

describe("a winner that misses the proof deadline", () => {
  it("wins the auction, leases one job and goes silent", async () => {
    // Sign first so both bids land well inside the bidding window.
    const bidA = await signedBid(opA, BLOCK, {
      bondAmount: BOND.toString(),
      basisPointFee: FEE_A,
    });
    const bidB = await signedBid(opB, BLOCK, { bondAmount: "5000", basisPointFee: 2000 });
    const now = Date.now();
    const open = await openAuction(BLOCK, {
      biddingClosesAt: now + BIDDING_MS,
      proofDeadline: now + BIDDING_MS + 3000,
      txCount: 4,
      blockReward: REWARD.toString(),
    });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    streamed = follow(
      `${stack.url}/v1/blocks/${BLOCK}/events`,
      events,
      AbortSignal.timeout(120_000),
    );
    streamed.catch(() => {});
    expect((await stack.client.submitBid(bidA.quote, bidA.signature)).status).toBe("accepted");
    expect((await stack.client.submitBid(bidB.quote, bidB.signature)).status).toBe("accepted");

    const committed = await eventually(async () => {
      const a = await stack.client.getAuction(BLOCK);
      return a.status === "committed" ? a : null;
    });
    expect(committed.winner?.quote.prover).toBe(opA.address);
    expect(committed.settlementFeeBps).toBe(FEE_A);
    expect((await stack.client.getProver(opA.address)).collateral.locked).toBe(BOND.toString());
    expect(await balance(stack.db.prisma, accounts.reserved(opB.address))).toBe(0n);

    // Its tree is out (the deadline may already have passed on a slow machine: A may lease in
    // open proving too, so the scenario is the same).
    await eventually(async () => {
      const stage = (await stack.client.getBlock(BLOCK)).stage;
      return ["proving", "deadline_missed", "open_proving"].includes(stage);
    });
    const workerA = await signIn(stack, opA, "a-silent");
    const job = await eventually(() => workerA.lease(1000));
    leasedByA = job.id;
    expect(job.blockNumber).toBe(BLOCK);
    // ... and never heartbeats, submits or leases again.
  });

  it("moves the block through deadline_missed to open_proving and slashes A's bond", async () => {
    const block = await waitForStage(stack, BLOCK, "open_proving");
    expect(Object.keys(block.stages)).toEqual(
      expect.arrayContaining(["auction_open", "committed", "proving", "deadline_missed"]),
    );
    expect(block.stages.deadline_missed).toBeLessThanOrEqual(block.stages.open_proving!);
    expect(block.winner).toBe(opA.address);

    const a = await stack.client.getProver(opA.address);
    expect(a.collateral).toEqual({
      deposited: DEPOSIT.toString(),
      locked: "0",
      slashed: BOND.toString(),
      available: (DEPOSIT - BOND).toString(),
    });
    expect(a.slashes).toBe(1);
    expect(a.penaltiesByKind.slash).toBe(1);

    // One slash movement: the whole bond out of A's locked account, half (rounded down) to the
    // sequencer's earnings, the rest burned.
    const slashes = await movements(stack.db.prisma, { kind: "slash" });
    expect(slashes).toHaveLength(1);
    expect(slashes[0]!.blockNumber).toBe(BLOCK);
    expect(Object.fromEntries(slashes[0]!.legs)).toEqual({
      [accounts.locked(opA.address)]: -BOND,
      [`earnings:${sequencer.address.toLowerCase()}`]: TO_SEQUENCER,
      burn: BURNED,
    });
    expect(await balance(stack.db.prisma, accounts.locked(opA.address))).toBe(0n);
    expect(await balance(stack.db.prisma, accounts.earnings(sequencer.address))).toBe(TO_SEQUENCER);
    expect(await balance(stack.db.prisma, accounts.burn)).toBe(BURNED);
    // The aggregator's metrics count the slash and the bond it took (in gwei).
    const metrics = parseProm(await stack.aggregator.ctx.metrics.registry.metrics());
    expect(sumOf(metrics, "prover_boost_slashes_total")).toBe(1);
    expect(sumOf(metrics, "prover_boost_penalties_total", { kind: "slash" })).toBe(1);
    expect(sumOf(metrics, "prover_boost_slashed_gwei_total")).toBeCloseTo(Number(BOND) / 1e9, 12);

    const page = await getJson<PageOf<PenaltyItem>>(
      stack,
      `/v1/data/penalties?operator=${opA.address}`,
    );
    const slashItems = page.items.filter((p) => p.kind === "slash");
    expect(slashItems).toEqual([
      expect.objectContaining({
        blockNumber: BLOCK,
        operator: opA.address,
        kind: "slash",
        amount: BOND.toString(),
      }),
    ]);
    // Anything else recorded against A can only be the withholding of its silent lease.
    for (const p of page.items) expect(["slash", "withholding"]).toContain(p.kind);
    await expectLedgerConsistent(stack.db.prisma);
  });

  it("lets B and C prove the rest; the reward goes to them by weighted work", async () => {
    const workers = [await signIn(stack, opB, "b-0"), await signIn(stack, opC, "c-0")];
    const block = await proveInTurns(stack, BLOCK, workers, "paid", 60_000);

    const stages = Object.keys(block.stages) as Stage[];
    expect(stages).toEqual(
      expect.arrayContaining([
        "auction_open",
        "committed",
        "proving",
        "deadline_missed",
        "open_proving",
        "proven",
        "paid",
      ]),
    );
    expect(stages).not.toContain("unclaimed");
    expect(block.stages.open_proving).toBeLessThanOrEqual(block.stages.proven!);
    expect(block.stages.proven).toBeLessThanOrEqual(block.stages.paid!);

    // Every job proven, none by A (its one lease lapsed and was proven by B or C).
    const jobs = await stack.db.prisma.proofJob.findMany({ where: { blockNumber: BLOCK } });
    expect(jobs).toHaveLength(planTree(4).nodes.length);
    for (const j of jobs) {
      expect(j.status).toBe("proven");
      expect([opB.address, opC.address]).toContain(j.operator);
    }
    expect(jobs.find((j) => j.id === leasedByA)?.operator).not.toBe(opA.address);

    // Exact payouts, recomputed from the ProofJob rows with the core rules.
    const expected = blockPayouts({
      reward: REWARD,
      feeBps: FEE_A,
      submitterBps: 0,
      sequencer: sequencer.address,
      submitter: sequencer.address,
      work: weightedWork(jobs.map((j) => ({ operator: j.operator!, type: j.type as JobType }))),
    });
    const norm = (ps: { recipient: string; role: string; amount: bigint | string }[]) =>
      ps
        .map((p) => ({ recipient: p.recipient, role: p.role, amount: p.amount.toString() }))
        .sort((x, y) => (x.role + x.recipient < y.role + y.recipient ? -1 : 1));
    expect(norm(block.payouts)).toEqual(norm(expected));
    expect(block.payouts.reduce((s, p) => s + BigInt(p.amount), 0n)).toBe(REWARD);
    const proverPay = block.payouts.filter((p) => p.role === "prover");
    expect(proverPay.length).toBeGreaterThan(0);
    for (const p of proverPay) expect([opB.address, opC.address]).toContain(p.recipient);
    expect(proverPay.reduce((s, p) => s + BigInt(p.amount), 0n)).toBe(
      (REWARD * BigInt(FEE_A)) / 10_000n,
    );

    // The slashed bond is not returned at payout: no unlock for this block.
    expect(await movements(stack.db.prisma, { kind: "unlock", blockNumber: BLOCK })).toEqual([]);
    const a = await stack.client.getProver(opA.address);
    expect(a.collateral.locked).toBe("0");
    expect(a.collateral.available).toBe((DEPOSIT - BOND).toString());
    expect(a.proofsDelivered).toBe(0);
    expect(a.earnings).toBe("0");

    // Earnings: the sequencer holds its slash compensation plus its payout; B and C their pay.
    const payOf = (addr: string) =>
      block.payouts.filter((p) => p.recipient === addr).reduce((s, p) => s + BigInt(p.amount), 0n);
    expect(await balance(stack.db.prisma, accounts.earnings(sequencer.address))).toBe(
      TO_SEQUENCER + payOf(sequencer.address),
    );
    for (const op of [opB, opC]) {
      const view = await stack.client.getProver(op.address);
      expect(view.earnings).toBe(payOf(op.address).toString());
      expect(view.collateral.available).toBe(DEPOSIT.toString());
      expect(await balance(stack.db.prisma, accounts.reserved(op.address))).toBe(0n);
      expect(view.collateral.locked).toBe("0");
      expect(view.proofsDelivered).toBe(jobs.filter((j) => j.operator === op.address).length);
    }
    expect(await balance(stack.db.prisma, accounts.rewards)).toBe(-REWARD);
    await expectLedgerConsistent(stack.db.prisma);
  });

  it("streams every stage of the detour once, and the stream ends after paid", async () => {
    await streamed;
    const seen = stagesOf(events);
    expect([...seen].sort()).toEqual(
      [
        "auction_open",
        "committed",
        "proving",
        "deadline_missed",
        "open_proving",
        "proven",
        "paid",
      ].sort(),
    );
    expect(seen.at(-1)).toBe("paid");
  });

  // Regression: deadline_missed and open_proving are stamped in the same millisecond, and JSONB
  // keeps keys ordered by length; the stream must still follow the lifecycle order.
  it("streams the stages in lifecycle order", async () => {
    await streamed;
    expect(stagesOf(events)).toEqual([
      "auction_open",
      "committed",
      "proving",
      "deadline_missed",
      "open_proving",
      "proven",
      "paid",
    ]);
  });
});
