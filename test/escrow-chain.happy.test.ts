// COLLATERAL=chain end to end, on a real anvil, Postgres and Redis: a deposit on the escrow is
// credited once its log has L1_CONFIRMATIONS confirmations, a bid against it is accepted, the
// aggregator locks the winner's bond and settles the proven block on chain exactly once, and
// every address's escrow balance equals the ledger's afterwards. A winner that misses its
// deadline is slashed on the escrow too, and the block proven in open proving is settled. A block
// nobody proves in open proving expires and its reward is refunded. And the devnet on chain
// (`npm start -- --chain`) runs blocks to paid and reconciles.
import { randomBytes } from "node:crypto";
import { reconcileEscrow } from "@prover-boost/chain";
import { accounts } from "@prover-boost/db";
import { runDevnet } from "@prover-boost/devnet";
import { escrowAbi } from "@prover-boost/escrow";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid } from "./fixtures.ts";
import {
  ADMIN_TOKEN,
  eventually,
  type Stack,
  sequencer,
  startStack,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
} from "./harness.ts";
import { proveUntilPaid, relayError, signIn } from "./support/blocks.ts";
import { fundIndexedReward, type L1, settlerAccount, startL1 } from "./support/l1.ts";
import { balance } from "./support/market-flow.ts";

const prover = account(0xe1);
const broke = account(0xe2);
const DEPOSIT = 10n ** 15n;
const REWARD = 10n ** 18n;
const BLOCK = 1;

let l1: L1;
let stack: Stack;

beforeAll(async () => {
  l1 = await startL1();
  stack = await startStack({ env: { ...l1.env, L1_CONFIRMATIONS: "2" } });
  await l1.fund(prover.address);
  await l1.fund(broke.address);
  await l1.fund(sequencer.address);
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await l1?.stop();
});

/**
 * Funds block `block`'s reward on the escrow (indexed), then opens its auction: bidding closes
 * `closesInMs` from now, the proof is due `dueInMs` from now.
 */
async function openFundedAuction(
  block: number,
  txCount: number,
  closesInMs: number,
  dueInMs: number,
) {
  await fundIndexedReward(stack, l1, block, REWARD);
  const now = Date.now();
  const open = await openAuction(block, {
    txCount,
    blockReward: REWARD.toString(),
    biddingClosesAt: now + closesInMs,
    proofDeadline: now + dueInMs,
  });
  await stack.client.openAuction(open.auction, open.txs, open.signature);
}

const available = async (a: `0x${string}`) =>
  BigInt((await stack.client.getProver(a)).collateral.available);
const indexedThrough = () => {
  const s = stack.relay.ctx.escrowIndex!.status;
  return s.ok ? s.block : -1n;
};

describe("COLLATERAL=chain", () => {
  it("credits a deposit only once its block has L1_CONFIRMATIONS confirmations", async () => {
    const { block } = await l1.deposit(prover, DEPOSIT);
    // Indexed through the block before the deposit's (one confirmation short): not credited.
    await eventually(async () => indexedThrough() >= block - 1n);
    expect(indexedThrough()).toBe(block - 1n);
    expect(await available(prover.address)).toBe(0n);
    await l1.mine(1);
    await eventually(async () => (await available(prover.address)) === DEPOSIT);
    // Seen again by later passes, it is credited once.
    await l1.mine(2);
    await eventually(async () => indexedThrough() >= block + 2n);
    expect(await available(prover.address)).toBe(DEPOSIT);
    const logs = await stack.db.prisma.chainLog.findMany({ where: { event: "Deposited" } });
    expect(logs).toHaveLength(1);
  });

  it("tells clients where collateral is held", async () => {
    expect((await stack.client.info()).collateral).toEqual({
      mode: "chain",
      escrow: stack.relay.env.ESCROW_ADDRESS,
      confirmations: 2,
    });
  });

  it("refuses the admin deposit endpoint with 409 COLLATERAL_ON_CHAIN and credits nothing", async () => {
    const res = await fetch(`${stack.url}/v1/admin/deposits`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ prover: broke.address, amount: "1000000" }),
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "COLLATERAL_ON_CHAIN",
    );
    expect(await available(broke.address)).toBe(0n);
  });

  it("accepts a bid backed by indexed collateral, locks the bond and settles the block once", async () => {
    await openFundedAuction(BLOCK, 4, 3000, 600_000);
    const unbacked = await signedBid(broke, BLOCK);
    expect(await relayError(stack.client.submitBid(unbacked.quote, unbacked.signature))).toEqual({
      status: 422,
      code: "INSUFFICIENT_COLLATERAL",
    });
    const bid = await signedBid(prover, BLOCK, { bondAmount: "5000" });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");
    await eventually(async () => (await stack.client.getBlock(BLOCK)).stage === "proving");
    const worker = await signIn(stack, prover, "w0");
    await proveUntilPaid(stack, BLOCK, [worker.client]);
    // With 2 confirmations a settlement is final once a block is mined on top of it.
    const settlements = await eventually(async () => {
      await l1.mine(1);
      const rows = await stack.db.prisma.settlement.findMany({ orderBy: { id: "asc" } });
      return rows.length === 2 && rows.every((r) => r.status === "confirmed") ? rows : null;
    });
    expect(settlements.map((s) => s.key)).toEqual([`lock:${BLOCK}`, `settle:${BLOCK}`]);
    const [state] = await l1.client.readContract({
      address: l1.escrow,
      abi: escrowAbi,
      functionName: "blockInfo",
      args: [BigInt(BLOCK)],
    });
    expect(state).toBe(2); // Settled
    const settled = await l1.client.getContractEvents({
      address: l1.escrow,
      abi: escrowAbi,
      eventName: "BlockSettled",
      fromBlock: 0n,
    });
    expect(settled).toHaveLength(1);
    expect(settled[0]!.transactionHash).toBe(settlements[1]!.txHash);
    // Each was sent with room above what it used (a balance changed before inclusion costs more).
    for (const s of settlements) {
      const hash = s.txHash as `0x${string}`;
      const [tx, receipt] = await Promise.all([
        l1.client.getTransaction({ hash }),
        l1.client.getTransactionReceipt({ hash }),
      ]);
      expect(tx.gas).toBeGreaterThanOrEqual((receipt.gasUsed * 14n) / 10n);
    }

    // Another pass (a restarted aggregator) sends nothing.
    const nonce = await l1.client.getTransactionCount({ address: settlerAccount.address });
    expect(await stack.aggregator.settler!.run()).toBe(0);
    expect(await l1.client.getTransactionCount({ address: settlerAccount.address })).toBe(nonce);

    // The escrow and the ledger agree for everyone paid or bonded.
    const payouts = await stack.db.prisma.payout.findMany({ where: { blockNumber: BLOCK } });
    const addresses = [
      ...new Set([prover.address, sequencer.address, ...payouts.map((p) => p.recipient)]),
    ] as `0x${string}`[];
    const report = await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, addresses);
    for (const r of report) expect(r.ledger, r.address).toEqual(r.chain);
    const proverRow = report.find((r) => r.address === prover.address)!;
    expect(proverRow.chain.locked).toBe(0n);
    expect(proverRow.chain.free).toBeGreaterThan(DEPOSIT);
  });
});

describe("a missed deadline on chain", () => {
  it("slashes the winner's bond on the escrow, then settles the block proven in open proving", async () => {
    const block = 2;
    const bond = 8000n;
    await openFundedAuction(block, 2, 3000, 4500);
    const bid = await signedBid(prover, block, { bondAmount: bond.toString() });
    expect((await stack.client.submitBid(bid.quote, bid.signature)).status).toBe("accepted");
    // The winner proves nothing; once the deadline passes anyone may.
    await eventually(async () => (await stack.client.getBlock(block)).stage === "open_proving");
    const other = await signIn(stack, broke, "w-open");
    await proveUntilPaid(stack, block, [other.client]);
    const rows = await eventually(async () => {
      await l1.mine(1);
      const r = await stack.db.prisma.settlement.findMany({
        where: { blockNumber: block },
        orderBy: { id: "asc" },
      });
      return r.length === 3 && r.every((s) => s.status === "confirmed") ? r : null;
    });
    expect(rows.map((r) => r.kind)).toEqual(["lock", "slash", "settle"]);
    const [slashed] = await l1.client.getContractEvents({
      address: l1.escrow,
      abi: escrowAbi,
      eventName: "BondSlashed",
      args: { blockNumber: BigInt(block) },
      fromBlock: 0n,
    });
    expect(slashed!.args).toMatchObject({
      amount: bond,
      toSequencer: bond / 2n,
      burned: bond / 2n,
    });
    const payouts = await stack.db.prisma.payout.findMany({ where: { blockNumber: block } });
    const addresses = [
      ...new Set([
        prover.address,
        broke.address,
        sequencer.address,
        ...payouts.map((p) => p.recipient),
      ]),
    ] as `0x${string}`[];
    for (const r of await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, addresses)) {
      expect(r.ledger, r.address).toEqual(r.chain);
    }
  });
});

describe("a block nobody proves on chain", () => {
  it("refunds its reward to the sequencer once its open proving is over", async () => {
    const block = 3;
    await openFundedAuction(block, 2, 1500, 600_000);
    await eventually(async () => (await stack.client.getBlock(block)).stage === "open_proving");
    expect(await balance(stack.db.prisma, accounts.reward(block))).toBe(REWARD);
    // The aggregator's window (a day by default) made short: its own ticks expire the block.
    const config = stack.aggregator.ctx.config;
    const windowMs = config.openProvingWindowMs;
    config.openProvingWindowMs = 1;
    try {
      await eventually(async () => (await stack.client.getBlock(block)).stage === "expired");
    } finally {
      config.openProvingWindowMs = windowMs;
    }
    await eventually(async () => {
      await l1.mine(1);
      const row = await stack.db.prisma.settlement.findUnique({
        where: { key: `refund:${block}` },
      });
      return row?.status === "confirmed";
    });
    const refunds = await l1.client.getContractEvents({
      address: l1.escrow,
      abi: escrowAbi,
      eventName: "RewardRefunded",
      args: { blockNumber: BigInt(block) },
      fromBlock: 0n,
    });
    expect(refunds.map((e) => e.args)).toEqual([
      { blockNumber: BigInt(block), sequencer: sequencer.address, amount: REWARD },
    ]);
    // The index books the refund it saw: the reward left the block's account for the
    // sequencer's, and the ledger holds what the escrow holds.
    await eventually(async () => {
      await l1.mine(1);
      return (await balance(stack.db.prisma, accounts.reward(block))) === 0n;
    });
    for (const r of await reconcileEscrow(stack.db.prisma, l1.client, l1.escrow, [
      sequencer.address,
    ])) {
      expect(r.ledger, r.address).toEqual(r.chain);
    }
  });
});

describe("the devnet on chain", () => {
  const schema = `devnet_chain_${randomBytes(4).toString("hex")}`;
  afterAll(async () => {
    const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });

  it("runs blocks to paid with on-chain deposits, locks and settlements, and reconciles", async () => {
    const { blocks, chain } = await runDevnet({
      blocks: 2,
      txs: 4,
      operators: 2,
      workers: 2,
      seed: "chain-test",
      port: 0,
      blockTimeMs: 700,
      biddingMs: 1500,
      deadlineMs: 60_000,
      simDurationsMs: { base: 20, merge: 10, block_root: 30, single_tx_block_root: 30 },
      env: { REDIS_URL: TEST_REDIS_URL, DATABASE_URL: TEST_DATABASE_URL, LOG_LEVEL: "silent" },
      schema,
      chain: true,
    });
    expect(blocks.map((b) => b.stage)).toEqual(["paid", "paid"]);
    expect(chain).toBeDefined();
    expect(chain!.escrow).toMatch(/^0x[0-9a-fA-F]{40}$/);
    // A won block's bond locked, and every block settled, once each.
    const expected = blocks.flatMap((b) => [
      ...(b.winner ? [`lock:${b.number}:confirmed`] : []),
      `settle:${b.number}:confirmed`,
    ]);
    expect(chain!.settlements.map((s) => `${s.kind}:${s.block}:${s.status}`).sort()).toEqual(
      expected.sort(),
    );
    for (const s of chain!.settlements) expect(s.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(chain!.reconciliation.length).toBeGreaterThanOrEqual(3);
    for (const r of chain!.reconciliation) expect(r.ledger, r.address).toEqual(r.chain);
    expect(chain!.reconciled).toBe(true);
  }, 180_000);
});
