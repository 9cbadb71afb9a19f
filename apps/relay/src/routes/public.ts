// Public data: blocks, trees, provers, auction listings, relay info.
import { activeSignatureBackend } from "@prover-boost/core";
import { accounts, balanceOf, collateralOf } from "@prover-boost/db";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { RelayContext } from "../context.ts";
import { address, blockParam } from "../schemas.ts";
import { auctionView } from "../services/auctions.ts";
import { getBlockView, getTreeView } from "../services/blocks.ts";

const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z
    .string()
    .regex(/^\d{1,10}$/, "cursor comes from nextCursor of the previous page")
    .refine((v) => Number(v) <= 2_147_483_647, "cursor comes from nextCursor of the previous page")
    .optional(),
});

export function registerPublicRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    "/v1/info",
    {
      schema: {
        tags: ["public"],
        summary: "Signing domain, slot clock, pricing, lease and scheduling rules",
      },
    },
    async () => ({
      domain: {
        name: ctx.domain.name,
        version: ctx.domain.version,
        ...(ctx.domain.chainId !== undefined ? { chainId: Number(ctx.domain.chainId) } : {}),
        ...(ctx.domain.verifyingContract
          ? { verifyingContract: ctx.domain.verifyingContract }
          : {}),
      },
      slotDurationMs: ctx.clock.slotDurationMs,
      genesisTimeMs: ctx.clock.genesisTimeMs,
      pricing: ctx.env.AUCTION_PRICING,
      leaseMs: ctx.broker.leaseMs,
      scheduling: ctx.env.SCHEDULING,
      maxRetryableFailsPerWorker: ctx.env.MAX_RETRYABLE_FAILS_PER_WORKER,
      signatureBackend: ctx.signatureBackend ?? activeSignatureBackend(),
    }),
  );
  r.get(
    "/v1/blocks/:blockNumber",
    {
      schema: {
        tags: ["public"],
        summary: "A block's stage, tree progress and payouts",
        params: blockParam,
      },
    },
    async (req) => getBlockView(ctx, req.params.blockNumber),
  );
  r.get(
    "/v1/blocks/:blockNumber/tree",
    { schema: { tags: ["public"], summary: "A block's proof tree", params: blockParam } },
    async (req) => getTreeView(ctx, req.params.blockNumber),
  );
  r.get(
    "/v1/provers/:address",
    {
      schema: {
        tags: ["public"],
        summary: "A prover's collateral and record",
        params: z.object({ address }),
      },
    },
    async (req) => {
      const prover = req.params.address;
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
        // Sealed bids: the bonds reserved by live bids are not shown apart (they would reveal
        // the bonds before the close); they are folded into `available`, which is therefore
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
    },
  );
  r.get(
    "/v1/data/auctions",
    {
      schema: {
        tags: ["data"],
        summary: "Auctions, newest block first",
        querystring: pageQuery.extend({
          status: z.enum(["open", "committed", "unclaimed"]).optional(),
          sequencer: address.optional(),
          block: z.coerce.number().int().min(0).max(2_147_483_647).optional(),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      const rows = await ctx.prisma.auction.findMany({
        where: {
          ...(q.status ? { status: q.status } : {}),
          ...(q.sequencer ? { sequencer: q.sequencer } : {}),
          ...(q.block !== undefined ? { blockNumber: q.block } : {}),
          ...(q.cursor ? { blockNumber: { lt: Number(q.cursor) } } : {}),
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
      return {
        items: page.map((a) =>
          auctionView(
            a,
            countOf.get(a.blockNumber) ?? 0,
            a.winnerBidId ? (winnerOf.get(a.winnerBidId) ?? null) : null,
          ),
        ),
        nextCursor: rows.length > q.limit ? String(page[page.length - 1]!.blockNumber) : null,
      };
    },
  );
}
