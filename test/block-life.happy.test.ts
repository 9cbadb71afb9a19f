// One block's whole life over HTTP against real Redis and Postgres (and PGlite): auction, bids,
// close, fan-out, leasing by signed-in workers, proofs checked by the relay, payout.
import { planTree, simProof, txsHash } from "@prover-boost/core";
import { accounts, balanceOf } from "@prover-boost/db";
import {
  type AuctionJson,
  type LeasedJob,
  newWorkerLogin,
  type RelayClient,
  signAuction,
  signQuote,
  signWorkerLogin,
} from "@prover-boost/sdk";
import { keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, eventually, type Stack, sequencer, startStack } from "./harness.ts";
import { testDomain } from "./support/domain.ts";

const domain = testDomain;
const provers = [1, 2, 3].map((i) => privateKeyToAccount(`0x${String(i).padStart(64, "0")}`));

function txsFor(block: number, n: number) {
  return Array.from({ length: n }, (_, i) => keccak256(toHex(`tx-${block}-${i}`)));
}

async function proveAll(stack: Stack, blockNumber: number, workerKeys = provers) {
  const workers = await Promise.all(
    workerKeys.map(async (op, i) => {
      const login = newWorkerLogin({
        operator: op.address,
        workerId: `w${i}`,
        capacity: 2,
        jobTypes: ["base", "merge", "block_root", "single_tx_block_root", "empty_block_root"],
      });
      const sig = await signWorkerLogin(op, domain, login);
      const { token } = await stack.client.createSession(login, sig, { cores: 2 });
      return stack.client.withToken(token);
    }),
  );
  const proveOne = async (w: RelayClient, job: LeasedJob) =>
    w.submitResult(
      job.id,
      simProof({ ...job, inputs: job.inputs, children: job.children.map((c) => c.proof) }),
    );
  await eventually(
    async () => {
      const jobs = await Promise.all(workers.map(async (w) => ({ w, job: await w.lease(200) })));
      await Promise.all(jobs.filter((j) => j.job).map((j) => proveOne(j.w, j.job!)));
      const block = await stack.client.getBlock(blockNumber);
      return block.stage === "paid" ? block : null;
    },
    30_000,
    0,
  );
}

describe.each<Backend>(["postgres", "pglite"])("a block's life (%s)", (backend) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ backend });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("runs auction → committed → proving → proven → paid with exact payouts", async () => {
    const blockNumber = 1;
    const txs = txsFor(blockNumber, 5);
    for (const p of provers) await stack.admin.deposit(p.address, 10n ** 21n);
    const now = Date.now();
    const auction: AuctionJson = {
      blockNumber,
      slot: 1,
      txCount: txs.length,
      txsHash: txsHash(txs),
      blockReward: "1000000000000000007",
      minBond: "1000",
      maxFeeBps: 4000,
      // Wide enough that all three bids land before the close even on a loaded machine.
      biddingClosesAt: now + 5000,
      proofDeadline: now + 60_000,
    };
    const opened = await stack.client.openAuction(
      auction,
      txs,
      await signAuction(sequencer, domain, auction),
    );
    expect(opened.status).toBe("open");
    expect(opened.auction.sequencer).toBe(sequencer.address);

    const fees = [3000, 2500, 2500];
    const bonds = ["5000", "4000", "6000"];
    for (const [i, p] of provers.entries()) {
      const quote = {
        epochToProve: blockNumber,
        validUntilSlot: Math.floor(Date.now() / 12_000) + 1000,
        bondAmount: bonds[i]!,
        prover: p.address,
        basisPointFee: fees[i]!,
      };
      const res = await stack.client.submitBid(quote, await signQuote(p, domain, quote));
      expect(res.status).toBe("accepted");
    }
    const sealed = await stack.client.getAuction(blockNumber);
    expect(sealed.bidCount).toBe(3);
    expect(sealed.winner).toBeNull();
    // The bond is reserved in the ledger, but the public view does not show it apart (sealed).
    expect(await balanceOf(stack.db.prisma, accounts.reserved(provers[2]!.address))).toBe(6000n);
    expect((await stack.client.getProver(provers[2]!.address)).collateral).not.toHaveProperty(
      "reserved",
    );

    // Fee tie at 2500 goes to the larger bond: prover 3.
    const committed = await eventually(async () => {
      const a = await stack.client.getAuction(blockNumber);
      return a.status === "committed" ? a : null;
    });
    expect(committed.winner?.quote.prover).toBe(provers[2]!.address);
    expect(committed.settlementFeeBps).toBe(2500);
    const loser = await stack.client.getProver(provers[0]!.address);
    expect(await balanceOf(stack.db.prisma, accounts.reserved(loser.address))).toBe(0n);
    expect((await stack.client.getProver(provers[2]!.address)).collateral.locked).toBe("6000");

    await eventually(async () => (await stack.client.getBlock(blockNumber)).stage === "proving");
    const tree = await stack.client.getTree(blockNumber);
    expect(tree.nodes).toHaveLength(planTree(5).nodes.length);
    expect(tree.nodes.find((n) => n.level === 1 && n.index === 1)?.type).toBe("base");

    // Only the winner's workers may prove while the block is committed.
    await proveAll(stack, blockNumber);
    const block = await stack.client.getBlock(blockNumber);
    expect(block.stage).toBe("paid");
    expect(Object.keys(block.stages)).toEqual([
      "auction_open",
      "committed",
      "proving",
      "proven",
      "paid",
    ]);
    const total = block.payouts.reduce((s, p) => s + BigInt(p.amount), 0n);
    expect(total).toBe(1000000000000000007n);
    const proverPay = block.payouts.filter((p) => p.role === "prover");
    expect(proverPay.map((p) => p.recipient)).toEqual([provers[2]!.address]);
    expect(proverPay[0]!.amount).toBe(((1000000000000000007n * 2500n) / 10000n).toString());

    // The root proof depends only on the transactions.
    expect(block.rootProof).toBe(expectedRoot(blockNumber, txs));
    const winner = await stack.client.getProver(provers[2]!.address);
    expect(winner.collateral.locked).toBe("0");
    expect(winner.collateral.available).toBe((10n ** 21n).toString());
    expect(winner.proofsDelivered).toBe(planTree(5).nodes.length);
  });
});

function expectedRoot(blockNumber: number, txs: `0x${string}`[]) {
  const plan = planTree(txs.length);
  const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
  const proofOf = (key: string): `0x${string}` => {
    const n = byKey.get(key)!;
    return simProof({
      type: n.type,
      blockNumber,
      level: n.level,
      index: n.index,
      inputs: n.txIndex !== undefined ? [txs[n.txIndex]!] : [],
      children: n.children.map(proofOf),
    });
  };
  return proofOf(plan.root);
}
