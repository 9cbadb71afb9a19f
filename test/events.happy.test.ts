// The block status stream and the public data API on real Redis and Postgres. A client follows
// GET /v1/blocks/{n}/events (server-sent events) while the block goes auction → committed →
// proving → proven → paid: one `stage` event per stage, in order, `job` events until every job is
// proven, and the stream ends after `paid`. Then the payouts listing, the penalties listing with
// cursor paging, and the prover view.

import type { Stage } from "@prover-boost/core";
import { planTree } from "@prover-boost/core";
import type { ProverView } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, openAuction, signedBid } from "./fixtures.ts";
import { eventually, type Stack, sequencer, startStack } from "./harness.ts";
import {
  BIDDING_MS,
  follow,
  getJson,
  type PageOf,
  type PayoutItem,
  type PenaltyItem,
  proveInTurns,
  type SseEvent,
  signIn,
  waitForStage,
} from "./support/market-flow.ts";
import { openEventStream } from "./support/sse.ts";

const BLOCK = 12;
const TXS = 5;
const DEPOSIT = 40_000n;
const REWARD = 999_999_999_999_999_989n;
const FEE = 2000;
const BOND = 6000n;
const INVALID_PROOFS = 5;

const winner = account(0xe1);
const loser = account(0xe2);

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ backend: "postgres" });
  await stack.admin.deposit(winner.address, DEPOSIT);
  await stack.admin.deposit(loser.address, DEPOSIT);
});
afterAll(async () => stack?.close());

describe("a block followed over its event stream", () => {
  const events: SseEvent[] = [];
  let streamed: Promise<void>;
  let streamEnded = false;

  it("streams one stage event per stage, job events, and ends after paid", async () => {
    const bidW = await signedBid(winner, BLOCK, {
      bondAmount: BOND.toString(),
      basisPointFee: FEE,
    });
    const bidL = await signedBid(loser, BLOCK, { bondAmount: "3000", basisPointFee: 2500 });
    const now = Date.now();
    const open = await openAuction(BLOCK, {
      biddingClosesAt: now + BIDDING_MS,
      proofDeadline: now + 600_000,
      blockReward: REWARD.toString(),
      txCount: TXS,
    });
    await stack.client.openAuction(open.auction, open.txs, open.signature);
    streamed = follow(
      `${stack.url}/v1/blocks/${BLOCK}/events`,
      events,
      AbortSignal.timeout(120_000),
    ).finally(() => {
      streamEnded = true;
    });
    streamed.catch(() => {}); // surfaced by `await streamed` below
    // The whole market's stream, filtered to this block, alongside.
    const live = await openEventStream(`${stack.url}/v1/events?block=${BLOCK}&lastEventId=0-0`);
    await stack.client.submitBid(bidW.quote, bidW.signature);
    await stack.client.submitBid(bidL.quote, bidL.signature);

    // While bidding is open the bonds are reserved, but the public view folds them into
    // `available` (sealed bids): nothing in it reveals the bond.
    const duringAuction = await getJson<ProverView>(stack, `/v1/provers/${loser.address}`);
    expect(duringAuction.collateral).not.toHaveProperty("reserved");
    expect(duringAuction.collateral.available).toBe(DEPOSIT.toString());

    await waitForStage(stack, BLOCK, "proving");
    const w0 = await signIn(stack, winner, "w-0");
    // Invalid proofs: each one is a penalty and gives the job back to the queue.
    for (let i = 0; i < INVALID_PROOFS; i++) {
      const job = await eventually(() => w0.lease(1000));
      await expect(w0.submitResult(job.id, `0x${"ab".repeat(32)}`)).rejects.toMatchObject({
        status: 422,
        code: "INVALID_PROOF",
      });
    }
    const w1 = await signIn(stack, winner, "w-1");
    await proveInTurns(stack, BLOCK, [w0, w1], "paid");

    // The stream ends by itself once the block is paid (or its reader failed: shown here).
    await eventually(async () => streamEnded, 30_000);
    await streamed;

    // The market stream told the same story, with the auction's close and the payouts.
    await eventually(async () => live.events.filter((e) => e.event === "payout").length === 2);
    live.close();
    const ofType = (t: string) => live.events.filter((e) => e.event === t).map((e) => e.data);
    expect(ofType("auction")).toEqual([
      expect.objectContaining({ block: BLOCK, kind: "opened", txCount: TXS }),
      expect.objectContaining({
        block: BLOCK,
        kind: "closed",
        winner: winner.address,
        feeBps: FEE,
        bond: BOND.toString(),
      }),
    ]);
    expect(ofType("stage")).toEqual(events.filter((e) => e.event === "stage").map((e) => e.data));
    const liveJobs = ofType("job") as { id: string; status: string }[];
    expect(liveJobs.filter((j) => j.status === "proven").length).toBe(planTree(TXS).nodes.length);
    expect(ofType("penalty")).toHaveLength(INVALID_PROOFS);
    expect(
      (ofType("payout") as { amount: string }[]).reduce((n, p) => n + BigInt(p.amount), 0n),
    ).toBe(REWARD);

    const stageEvents = events.filter((e) => e.event === "stage");
    expect(stageEvents.map((e) => (e.data as { stage: Stage }).stage)).toEqual([
      "auction_open",
      "committed",
      "proving",
      "proven",
      "paid",
    ]);
    const block = await stack.client.getBlock(BLOCK);
    for (const e of stageEvents) {
      const d = e.data as { block: number; stage: Stage; at: number };
      expect(d.block).toBe(BLOCK);
      expect(d.at).toBe(block.stages[d.stage]);
    }
    expect(events.every((e) => e.event === "stage" || e.event === "job")).toBe(true);

    // Job events: every node of the tree, each ending proven, nothing after proven, and no
    // repeated state in a row.
    const tree = await stack.client.getTree(BLOCK);
    expect(tree.nodes).toHaveLength(planTree(TXS).nodes.length);
    const byJob = new Map<string, string[]>();
    for (const e of events.filter((x) => x.event === "job")) {
      const d = e.data as { block: number; id: string; status: string; type: string };
      expect(d.block).toBe(BLOCK);
      byJob.set(d.id, [...(byJob.get(d.id) ?? []), d.status]);
    }
    expect([...byJob.keys()].sort()).toEqual(tree.nodes.map((n) => n.id).sort());
    for (const [id, states] of byJob) {
      expect(states.at(-1), id).toBe("proven");
      expect(states.indexOf("proven"), id).toBe(states.length - 1);
      for (let i = 1; i < states.length; i++) expect(states[i], id).not.toBe(states[i - 1]);
    }
  });

  it("lists the block's payouts, summing to the reward, filtered by recipient", async () => {
    const all = await getJson<PageOf<PayoutItem>>(stack, `/v1/data/payouts?block=${BLOCK}`);
    expect(all.nextCursor).toBeNull();
    expect(all.items.reduce((s, p) => s + BigInt(p.amount), 0n)).toBe(REWARD);
    expect(all.items.every((p) => p.blockNumber === BLOCK)).toBe(true);
    const proverShare = (REWARD * BigInt(FEE)) / 10_000n;
    expect(
      all.items.map((p) => ({ recipient: p.recipient, role: p.role, amount: p.amount })),
    ).toEqual(
      expect.arrayContaining([
        { recipient: winner.address, role: "prover", amount: proverShare.toString() },
        {
          recipient: sequencer.address,
          role: "sequencer",
          amount: (REWARD - proverShare).toString(),
        },
      ]),
    );
    expect(all.items).toHaveLength(2);

    for (const recipient of [winner.address, winner.address.toLowerCase()]) {
      const mine = await getJson<PageOf<PayoutItem>>(
        stack,
        `/v1/data/payouts?block=${BLOCK}&recipient=${recipient}`,
      );
      expect(mine.items.map((p) => [p.recipient, p.role, p.amount])).toEqual([
        [winner.address, "prover", proverShare.toString()],
      ]);
    }
    const seq = await getJson<PageOf<PayoutItem>>(
      stack,
      `/v1/data/payouts?recipient=${sequencer.address}`,
    );
    expect(seq.items.map((p) => p.role)).toEqual(["sequencer"]);
    const none = await getJson<PageOf<PayoutItem>>(
      stack,
      `/v1/data/payouts?recipient=${loser.address}`,
    );
    expect(none.items).toEqual([]);
  });

  it("pages penalties with a cursor, without duplicates or gaps", async () => {
    const pageAll = async (query: string, limit: number) => {
      const pages: PenaltyItem[][] = [];
      let cursor: string | null = null;
      do {
        const qs = `${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
        const page: PageOf<PenaltyItem> = await getJson(stack, `/v1/data/penalties?${qs}`);
        expect(page.items.length).toBeLessThanOrEqual(limit);
        pages.push(page.items);
        cursor = page.nextCursor;
        expect(pages.length).toBeLessThanOrEqual(50);
      } while (cursor !== null);
      return pages;
    };

    const whole = await getJson<PageOf<PenaltyItem>>(
      stack,
      `/v1/data/penalties?operator=${winner.address}&limit=100`,
    );
    expect(whole.nextCursor).toBeNull();
    expect(whole.items).toHaveLength(INVALID_PROOFS);
    for (const p of whole.items) {
      expect(p).toMatchObject({
        blockNumber: BLOCK,
        operator: winner.address,
        worker: "w-0",
        kind: "invalid_proof",
      });
    }
    // Newest first.
    const times = whole.items.map((p) => p.createdAt);
    expect(times).toEqual([...times].sort((a, b) => b - a));

    const pages = await pageAll(`operator=${winner.address}`, 2);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual(whole.items);

    // Penalties recorded in the same millisecond still page exactly once each.
    const at = BigInt(Date.now());
    const tied = account(0xe9).address;
    await stack.db.prisma.penalty.createMany({
      data: Array.from({ length: 7 }, (_, i) => ({
        id: `tie-${i}`,
        blockNumber: BLOCK,
        jobId: `tied-job-${i}`,
        operator: tied,
        kind: "withholding",
        amount: "0",
        createdAt: at,
      })),
    });
    const tiedPages = await pageAll(`operator=${tied}`, 2);
    expect(tiedPages.map((p) => p.length)).toEqual([2, 2, 2, 1]);
    const jobIds = tiedPages.flat().map((p) => p.jobId);
    expect(new Set(jobIds).size).toBe(7);
    expect([...jobIds].sort()).toEqual(Array.from({ length: 7 }, (_, i) => `tied-job-${i}`));

    const byBlock = await pageAll(`block=${BLOCK}`, 3);
    expect(byBlock.flat()).toHaveLength(INVALID_PROOFS + 7);
  });

  it("shows each prover's collateral, record and earnings", async () => {
    const tree = await stack.client.getTree(BLOCK);
    const block = await stack.client.getBlock(BLOCK);
    const payOf = (addr: string) =>
      block.payouts.filter((p) => p.recipient === addr).reduce((s, p) => s + BigInt(p.amount), 0n);

    // Any casing in the path; the answer is checksummed.
    const w = await getJson<ProverView>(stack, `/v1/provers/${winner.address.toLowerCase()}`);
    expect(w).toEqual({
      address: winner.address,
      collateral: {
        deposited: DEPOSIT.toString(),
        locked: "0",
        slashed: "0",
        available: DEPOSIT.toString(),
      },
      blocksWon: 1,
      proofsDelivered: tree.nodes.length,
      penalties: INVALID_PROOFS,
      penaltiesByKind: { invalid_proof: INVALID_PROOFS },
      slashes: 0,
      earnings: payOf(winner.address).toString(),
    });

    const l = await getJson<ProverView>(stack, `/v1/provers/${loser.address}`);
    expect(l).toEqual({
      address: loser.address,
      collateral: {
        deposited: DEPOSIT.toString(),
        locked: "0",
        slashed: "0",
        available: DEPOSIT.toString(),
      },
      blocksWon: 0,
      proofsDelivered: 0,
      penalties: 0,
      penaltiesByKind: {},
      slashes: 0,
      earnings: "0",
    });

    const s = await getJson<ProverView>(stack, `/v1/provers/${sequencer.address}`);
    expect(s.earnings).toBe(payOf(sequencer.address).toString());
    expect(s.collateral.deposited).toBe("0");

    const res = await fetch(`${stack.url}/v1/provers/0x1234`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "VALIDATION_FAILED",
    );
  });
});
