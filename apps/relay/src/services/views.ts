// Read models of the public API: prover records and the paged /v1/data lists. Every list is newest
// first and pages with one cursor format, `<sort key>_<id>` of the last item sent (see the
// contract's cursorPattern): lists of rows with a creation time sort by (createdAt, id), auctions
// by block number.
import {
  cursorPattern,
  INT4_MAX,
  type listAuctionsQuery,
  type listBidsQuery,
  type listPayoutsQuery,
  type listPenaltiesQuery,
  type listWorkersQuery,
  uint256IntJson,
} from "@prover-boost/contract";
import { accounts, balanceOf, collateralOf } from "@prover-boost/db";
import type { z } from "zod";
import type { RelayContext } from "../context.ts";
import { auctionView } from "./auctions.ts";

interface Cursor {
  at: bigint;
  id: string;
}

export function decodeCursor(cursor: string | undefined): Cursor | null {
  if (!cursor) return null;
  const m = cursorPattern.exec(cursor);
  return m ? { at: BigInt(m[1]!), id: m[2]! } : null;
}

export const encodeCursor = (c: { at: bigint | number; id: string }) => `${c.at}_${c.id}`;

/** The first `limit` rows (the query took one more) and the cursor of the page after them. */
export function paged<T, U>(
  rows: T[],
  limit: number,
  positionOf: (row: T) => { at: bigint | number; id: string },
  view: (items: T[]) => U[],
): { items: U[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  return {
    items: view(items),
    nextCursor: rows.length > limit ? encodeCursor(positionOf(items[items.length - 1]!)) : null,
  };
}

/** Where clause: rows strictly after the cursor in (createdAt desc, id desc) order. */
function after(cursor: Cursor | null) {
  if (!cursor) return {};
  return {
    OR: [{ createdAt: { lt: cursor.at } }, { createdAt: cursor.at, id: { lt: cursor.id } }],
  };
}

const newestFirst = [{ createdAt: "desc" as const }, { id: "desc" as const }];
const byCreation = (row: { createdAt: bigint; id: string }) => ({ at: row.createdAt, id: row.id });

export async function listAuctions(ctx: RelayContext, q: z.output<typeof listAuctionsQuery>) {
  const cursor = decodeCursor(q.cursor);
  const rows = await ctx.prisma.auction.findMany({
    where: {
      ...(q.status ? { status: q.status } : {}),
      ...(q.sequencer ? { sequencer: q.sequencer } : {}),
      // The filter and the cursor each bound the block number, so they are combined, never one
      // in place of the other. Past int4 every block number is below the cursor.
      AND: [
        q.block !== undefined ? { blockNumber: q.block } : {},
        cursor && cursor.at <= BigInt(INT4_MAX) ? { blockNumber: { lt: Number(cursor.at) } } : {},
      ],
    },
    orderBy: { blockNumber: "desc" },
    take: q.limit + 1,
  });
  const page = rows.slice(0, q.limit);
  const counts = await ctx.prisma.bid.groupBy({
    by: ["blockNumber"],
    where: {
      blockNumber: { in: page.map((a) => a.blockNumber) },
      status: { in: ["active", "won", "lost", "expired"] },
    },
    _count: { _all: true },
  });
  const countOf = new Map(counts.map((c) => [c.blockNumber, c._count._all]));
  const winners = await ctx.prisma.bid.findMany({
    where: {
      id: { in: page.map((a) => a.winnerBidId).filter((x): x is string => x !== null) },
    },
  });
  const winnerOf = new Map(winners.map((w) => [w.id, w]));
  return paged(
    rows,
    q.limit,
    (a) => ({ at: a.blockNumber, id: String(a.blockNumber) }),
    (items) =>
      items.map((a) =>
        auctionView(
          a,
          countOf.get(a.blockNumber) ?? 0,
          a.winnerBidId ? (winnerOf.get(a.winnerBidId) ?? null) : null,
        ),
      ),
  );
}

export async function listBids(ctx: RelayContext, q: z.output<typeof listBidsQuery>) {
  const rows = await ctx.prisma.bid.findMany({
    where: {
      auction: { status: { not: "open" } },
      ...(q.block !== undefined ? { blockNumber: q.block } : {}),
      ...(q.prover ? { prover: q.prover } : {}),
      ...after(decodeCursor(q.cursor)),
    },
    orderBy: newestFirst,
    take: q.limit + 1,
  });
  return paged(rows, q.limit, byCreation, (items) =>
    items.map((b) => ({
      bidId: b.id,
      blockNumber: b.blockNumber,
      prover: b.prover,
      basisPointFee: b.basisPointFee,
      bondAmount: b.bondAmount.toFixed(),
      validUntilSlot: uint256IntJson(BigInt(b.validUntilSlot.toFixed())),
      status: b.status,
      signature: b.signature,
      createdAt: Number(b.createdAt),
    })),
  );
}

export async function listPayouts(ctx: RelayContext, q: z.output<typeof listPayoutsQuery>) {
  const rows = await ctx.prisma.payout.findMany({
    where: {
      ...(q.block !== undefined ? { blockNumber: q.block } : {}),
      ...(q.recipient ? { recipient: q.recipient } : {}),
      ...after(decodeCursor(q.cursor)),
    },
    orderBy: newestFirst,
    take: q.limit + 1,
  });
  return paged(rows, q.limit, byCreation, (items) =>
    items.map((p) => ({
      blockNumber: p.blockNumber,
      recipient: p.recipient,
      role: p.role,
      amount: p.amount.toFixed(),
      createdAt: Number(p.createdAt),
    })),
  );
}

export async function listPenalties(ctx: RelayContext, q: z.output<typeof listPenaltiesQuery>) {
  const rows = await ctx.prisma.penalty.findMany({
    where: {
      ...(q.block !== undefined ? { blockNumber: q.block } : {}),
      ...(q.operator ? { operator: q.operator } : {}),
      ...after(decodeCursor(q.cursor)),
    },
    orderBy: newestFirst,
    take: q.limit + 1,
  });
  return paged(rows, q.limit, byCreation, (items) =>
    items.map((p) => ({
      blockNumber: p.blockNumber,
      jobId: p.jobId,
      operator: p.operator,
      worker: p.workerId,
      kind: p.kind,
      amount: p.amount.toFixed(),
      createdAt: Number(p.createdAt),
    })),
  );
}

export async function listWorkers(ctx: RelayContext, q: z.output<typeof listWorkersQuery>) {
  const now = ctx.now();
  const rows = await ctx.prisma.workerSession.findMany({
    where: {
      expiresAt: { gt: BigInt(now) },
      ...(q.operator ? { operator: q.operator } : {}),
      ...after(decodeCursor(q.cursor)),
    },
    orderBy: newestFirst,
    take: q.limit + 1,
  });
  const leases = await ctx.broker.liveCounts(rows.slice(0, q.limit).map((s) => s.id));
  return paged(rows, q.limit, byCreation, (items) =>
    items.map((s, i) => ({
      sessionId: s.id,
      operator: s.operator,
      workerId: s.workerName,
      capacity: s.capacity,
      jobTypes: s.jobTypes,
      tier: s.tier,
      hardware: s.hardware,
      leases: leases[i],
      expiresAt: Number(s.expiresAt),
      createdAt: Number(s.createdAt),
    })),
  );
}

/** A prover's collateral, blocks won, proofs delivered, penalties and earnings. */
export async function getProverView(ctx: RelayContext, prover: `0x${string}`) {
  const c = await collateralOf(ctx.prisma, prover);
  const [blocksWon, proofsDelivered, penaltyRows, earnings, slashes] = await Promise.all([
    ctx.prisma.bid.count({ where: { prover, status: "won" } }),
    ctx.prisma.proofJob.count({ where: { operator: prover, status: "proven" } }),
    ctx.prisma.penalty.groupBy({
      by: ["kind"],
      where: { operator: prover },
      _count: { _all: true },
    }),
    balanceOf(ctx.prisma, accounts.earnings(prover)),
    ctx.prisma.penalty.count({ where: { operator: prover, kind: "slash" } }),
  ]);
  const penaltiesByKind = Object.fromEntries(penaltyRows.map((p) => [p.kind, p._count._all]));
  return {
    address: prover,
    // Sealed bids: the bonds reserved by live bids are not shown apart (they would reveal the
    // bonds before the close); they are folded into `available`, which is therefore
    // deposited - locked - slashed. Bonds of won auctions are public and shown as `locked`.
    collateral: {
      deposited: c.deposited.toString(),
      locked: c.locked.toString(),
      slashed: c.slashed.toString(),
      available: (c.available + c.reserved).toString(),
    },
    blocksWon,
    proofsDelivered,
    penalties: penaltyRows.reduce((n, p) => n + p._count._all, 0),
    penaltiesByKind,
    slashes,
    earnings: earnings.toString(),
  };
}

/** Whether a block exists. */
export async function blockExists(ctx: RelayContext, number: number): Promise<boolean> {
  const row = await ctx.prisma.block.findUnique({ where: { number }, select: { number: true } });
  return row !== null;
}

/**
 * A block's stage times and its jobs' states, as the block event stream starts with them, and the
 * database snapshot they were read in (`xmin:xmax:xip,...`), so that a change the stream later
 * hears of can be told apart from one the snapshot already shows (see visibleIn).
 */
export async function blockSnapshot(ctx: RelayContext, number: number) {
  return ctx.prisma.$transaction(
    async (tx) => {
      const [{ snapshot }] = await tx.$queryRaw<[{ snapshot: string }]>`
        SELECT pg_current_snapshot()::text AS snapshot`;
      const block = await tx.block.findUnique({ where: { number } });
      const jobs = await tx.proofJob.findMany({
        where: { blockNumber: number },
        select: { id: true, status: true, workerId: true, type: true },
      });
      return {
        snapshot: parseSnapshot(snapshot),
        stage: block?.stage ?? null,
        stages: (block?.stages ?? {}) as Record<string, number>,
        jobs,
      };
    },
    { isolationLevel: "RepeatableRead" },
  );
}

export interface DbSnapshot {
  xmin: bigint;
  xmax: bigint;
  running: Set<bigint>;
}

export function parseSnapshot(text: string): DbSnapshot {
  const [xmin, xmax, xip] = text.split(":");
  return {
    xmin: BigInt(xmin!),
    xmax: BigInt(xmax!),
    running: new Set(xip ? xip.split(",").map((x) => BigInt(x)) : []),
  };
}

/** Whether the changes of transaction `txid` (if it committed) are seen in snapshot `s`. */
export const visibleIn = (s: DbSnapshot, txid: bigint) =>
  txid < s.xmin || (txid < s.xmax && !s.running.has(txid));
