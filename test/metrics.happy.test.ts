// The market metrics move with the market, on real Redis and Postgres: a bid accepted and a bid
// rejected count under their outcomes; while a block is proven the scrape-time gauges show its
// queued jobs and the workers signed in; once it is paid, the relay counted one verified proof
// and one lease per job, an invalid proof under its reason and penalty kind, and the aggregator
// counted the auction's close and the payouts, on its own /metrics endpoint. Queue depth carries
// the job type: a block's root queue holds its one root job, whose type its size decides.
import { serveMetrics } from "@prover-boost/config";
import { RelayError } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import {
  BIDDING_MS,
  openUnclaimed,
  proveInTurns,
  signIn,
  waitForStage,
} from "./support/market-flow.ts";
import { parseProm, type Sample, sumOf } from "./support/prom-text.ts";

const BLOCK = 31;
const TXS = 6;
const prover = account(0xd1);
const stranger = account(0xd2);

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ backend: "postgres" });
  await stack.admin.deposit(prover.address, 100_000n);
});
afterAll(async () => stack?.close());

async function relayMetrics(): Promise<Sample[]> {
  const res = await fetch(`${stack.url}/metrics`);
  expect(res.status).toBe(200);
  return parseProm(await res.text());
}

describe("relay and aggregator metrics", () => {
  it("count bids by outcome: accepted, and a rejection under its error code", async () => {
    const before = await relayMetrics();
    const now = Date.now();
    const open = await openAuction(BLOCK, {
      biddingClosesAt: now + BIDDING_MS,
      proofDeadline: now + 600_000,
      txCount: TXS,
    });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    const bid = await signedBid(prover, BLOCK, { bondAmount: "5000", basisPointFee: 1000 });
    await stack.client.submitBid(bid.quote, bid.signature);
    // A prover with no collateral: refused, with a stable code.
    const broke = await signedBid(stranger, BLOCK, { bondAmount: "5000" });
    const refused = await stack.client.submitBid(broke.quote, broke.signature).then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(RelayError);
    const code = (refused as RelayError).code;
    const after = await relayMetrics();
    const bids = (s: Sample[], outcome: string) => sumOf(s, "prover_boost_bids_total", { outcome });
    expect(bids(after, "accepted") - bids(before, "accepted")).toBe(1);
    expect(bids(after, code) - bids(before, code)).toBe(1);
    // The accepted bid went through a group-committed write (the refused one may have too).
    const writes = (s: Sample[]) =>
      sumOf(s, "prover_boost_group_commit_batch_size_count", { writer: "bids" });
    expect(writes(after)).toBeGreaterThan(writes(before));
  });

  it("show the block's queued jobs and the workers online while it is proven", async () => {
    await waitForStage(stack, BLOCK, "proving");
    const jobs = await stack.db.prisma.proofJob.count({ where: { blockNumber: BLOCK } });
    expect(jobs).toBeGreaterThan(TXS);
    await signIn(stack, prover, "m-0");
    await signIn(stack, prover, "m-1");
    // Gauges are read at scrape and cached for a moment: a later scrape shows the new state.
    const seen = await eventually(async () => {
      const s = await relayMetrics();
      return sumOf(s, "prover_boost_workers_online") === 2 ? s : null;
    });
    expect(sumOf(seen, "prover_boost_queue_jobs")).toBe(jobs);
    expect(sumOf(seen, "prover_boost_queue_jobs", { kind: "base" })).toBe(TXS);
    // By job type: the root queue's one job is a block_root (more than one transaction).
    const byType = (type: string) => sumOf(seen, "prover_boost_queue_jobs", { type });
    expect(byType("base")).toBe(TXS);
    expect(byType("merge")).toBe(jobs - TXS - 1);
    expect(byType("block_root")).toBe(1);
    expect(sumOf(seen, "prover_boost_queue_jobs", { kind: "root", type: "block_root" })).toBe(1);
    expect(byType("single_tx_block_root") + byType("empty_block_root")).toBe(0);
    expect(sumOf(seen, "prover_boost_leases_live")).toBe(0);
  });

  it("count every proof verified, every lease, the invalid proof, the close and the payouts", async () => {
    const jobs = await stack.db.prisma.proofJob.count({ where: { blockNumber: BLOCK } });
    const [w0, w1] = [await signIn(stack, prover, "p-0"), await signIn(stack, prover, "p-1")];
    const bad = await eventually(() => w0.lease(1000));
    await expect(w0.submitResult(bad.id, `0x${"ab".repeat(32)}`)).rejects.toMatchObject({
      code: "INVALID_PROOF",
    });
    await proveInTurns(stack, BLOCK, [w0, w1], "paid");
    // Each lease's record (its `lease_mark` step) is written after its answer.
    await eventually(async () => stack.relay.ctx.leaseMarks.size === 0);

    const relay = await relayMetrics();
    expect(sumOf(relay, "prover_boost_proofs_verified_total")).toBe(jobs);
    expect(sumOf(relay, "prover_boost_proof_time_seconds_count")).toBe(jobs);
    // One lease per job, and one more for the job handed back with an invalid proof.
    expect(sumOf(relay, "prover_boost_leases_granted_total")).toBe(jobs + 1);
    expect(sumOf(relay, "prover_boost_leases_granted_total", { job_type: "base" })).toBe(
      TXS + (bad.type === "base" ? 1 : 0),
    );
    // Each lease was a pop that brought its job; leased in turns, no pop found its queue empty.
    expect(sumOf(relay, "prover_boost_queue_pops_total", { outcome: "job" })).toBe(jobs + 1);
    expect(sumOf(relay, "prover_boost_queue_pops_total", { outcome: "empty" })).toBe(0);
    // Leaves were ready when added; parents when their last child completed on this relay.
    expect(sumOf(relay, "prover_boost_time_to_lease_seconds_count")).toBe(jobs + 1);
    expect(sumOf(relay, "prover_boost_proofs_rejected_total", { reason: "invalid_proof" })).toBe(1);
    expect(sumOf(relay, "prover_boost_penalties_total", { kind: "invalid_proof" })).toBe(1);
    // Each step timed once per proof checked (the invalid one too), per proof credited, and per
    // lease granted.
    const steps = (step: string) => sumOf(relay, "prover_boost_job_step_seconds_count", { step });
    expect(steps("verify")).toBe(jobs + 1);
    for (const step of ["complete", "proof_mark"]) expect(steps(step)).toBe(jobs);
    for (const step of ["gate", "take", "lease_mark"]) expect(steps(step)).toBe(jobs + 1);
    expect(sumOf(relay, "prover_boost_job_step_seconds_sum", { step: "take" })).toBeGreaterThan(0);
    expect(
      sumOf(relay, "prover_boost_group_commit_batch_size_sum", { writer: "job_marks" }),
    ).toBeGreaterThanOrEqual(2 * jobs);
    // Each write is timed once it has its items' results.
    expect(
      sumOf(relay, "prover_boost_group_commit_write_seconds_count", { writer: "job_marks" }),
    ).toBe(sumOf(relay, "prover_boost_group_commit_batch_size_count", { writer: "job_marks" }));

    // The aggregator's own endpoint, as server.ts serves it.
    const server = await serveMetrics(stack.aggregator.ctx.metrics.registry, {
      port: 0,
      host: "127.0.0.1",
      ephemeral: true,
    });
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(res.status).toBe(200);
      const agg = parseProm(await res.text());
      expect(sumOf(agg, "prover_boost_auctions_closed_total", { outcome: "committed" })).toBe(1);
      expect(sumOf(agg, "prover_boost_auction_close_lag_seconds_count")).toBe(1);
      const payouts = await stack.db.prisma.payout.findMany({ where: { blockNumber: BLOCK } });
      expect(payouts.length).toBeGreaterThan(0);
      expect(sumOf(agg, "prover_boost_payouts_total")).toBe(payouts.length);
      const wei = payouts.reduce((s, p) => s + BigInt(p.amount.toFixed()), 0n);
      expect(sumOf(agg, "prover_boost_payout_gwei_total")).toBeCloseTo(Number(wei) / 1e9, 3);
      expect(sumOf(agg, "prover_boost_blocks", { stage: "paid" })).toBe(1);
      expect(sumOf(agg, "prover_boost_aggregator_process_cpu_seconds_total")).toBeGreaterThan(0);
      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it("count a one-transaction block's root job under its own type", async () => {
    // Unclaimed, so it goes straight to open proving; the paid block's queues are gone by now.
    await openUnclaimed(stack, BLOCK + 1, { txCount: 1 });
    await waitForStage(stack, BLOCK + 1, "open_proving");
    const seen = await eventually(async () => {
      const s = await relayMetrics();
      return sumOf(s, "prover_boost_queue_jobs") === 2 ? s : null;
    });
    const byType = (type: string) => sumOf(seen, "prover_boost_queue_jobs", { type });
    expect(byType("single_tx_block_root")).toBe(1);
    expect(byType("base")).toBe(1);
    expect(byType("block_root") + byType("merge")).toBe(0);
    // The root job waits for its one child.
    expect(
      sumOf(seen, "prover_boost_queue_jobs", {
        type: "single_tx_block_root",
        state: "waiting-children",
      }),
    ).toBe(1);
  });
});
