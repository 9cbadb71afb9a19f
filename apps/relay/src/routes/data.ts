// The public data API: bids (sealed while their auction is open), payouts, penalties, workers.
// Pages are newest first; `cursor` is the opaque position after which the next page starts.
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { RelayContext } from "../context.ts";
import { address } from "../schemas.ts";

const page = {
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z
    .string()
    .regex(
      /^\d{1,15}_[A-Za-z0-9:._x-]{1,120}$/,
      "cursor comes from nextCursor of the previous page",
    )
    .optional(),
};
const blockFilter = z.coerce.number().int().min(0).max(2_147_483_647).optional();

/** Cursor over (createdAt, id) pairs, newest first. */
function decodeCursor(cursor: string | undefined): { at: bigint; id: string } | null {
  if (!cursor) return null;
  const m = /^(\d{1,15})_([A-Za-z0-9:._x-]{1,120})$/.exec(cursor);
  return m ? { at: BigInt(m[1]!), id: m[2]! } : null;
}
const encodeCursor = (row: { createdAt: bigint; id: string }) => `${row.createdAt}_${row.id}`;

function after(cursor: { at: bigint; id: string } | null) {
  if (!cursor) return {};
  return {
    OR: [{ createdAt: { lt: cursor.at } }, { createdAt: cursor.at, id: { lt: cursor.id } }],
  };
}

function paged<T extends { createdAt: bigint; id: string }>(rows: T[], limit: number) {
  const items = rows.slice(0, limit);
  return { items, nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!) : null };
}

export function registerDataRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    "/v1/data/bids",
    {
      schema: {
        tags: ["data"],
        summary: "Bids of closed auctions (open auctions' bids stay sealed)",
        querystring: z.object({ ...page, block: blockFilter, prover: address.optional() }),
      },
    },
    async (req) => {
      const q = req.query;
      const rows = await ctx.prisma.bid.findMany({
        where: {
          auction: { status: { not: "open" } },
          ...(q.block !== undefined ? { blockNumber: q.block } : {}),
          ...(q.prover ? { prover: q.prover } : {}),
          ...after(decodeCursor(q.cursor)),
        },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
        take: q.limit + 1,
      });
      const { items, nextCursor } = paged(rows, q.limit);
      return {
        items: items.map((b) => ({
          bidId: b.id,
          blockNumber: b.blockNumber,
          prover: b.prover,
          basisPointFee: b.basisPointFee,
          bondAmount: b.bondAmount.toFixed(),
          validUntilSlot: Number(b.validUntilSlot),
          status: b.status,
          signature: b.signature,
          createdAt: Number(b.createdAt),
        })),
        nextCursor,
      };
    },
  );
  r.get(
    "/v1/data/payouts",
    {
      schema: {
        tags: ["data"],
        summary: "Reward payouts",
        querystring: z.object({ ...page, block: blockFilter, recipient: address.optional() }),
      },
    },
    async (req) => {
      const q = req.query;
      const rows = await ctx.prisma.payout.findMany({
        where: {
          ...(q.block !== undefined ? { blockNumber: q.block } : {}),
          ...(q.recipient ? { recipient: q.recipient } : {}),
          ...after(decodeCursor(q.cursor)),
        },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
        take: q.limit + 1,
      });
      const { items, nextCursor } = paged(rows, q.limit);
      return {
        items: items.map((p) => ({
          blockNumber: p.blockNumber,
          recipient: p.recipient,
          role: p.role,
          amount: p.amount.toFixed(),
          createdAt: Number(p.createdAt),
        })),
        nextCursor,
      };
    },
  );
  r.get(
    "/v1/data/penalties",
    {
      schema: {
        tags: ["data"],
        summary: "Penalties: withholding, invalid proofs, slashes",
        querystring: z.object({ ...page, block: blockFilter, operator: address.optional() }),
      },
    },
    async (req) => {
      const q = req.query;
      const rows = await ctx.prisma.penalty.findMany({
        where: {
          ...(q.block !== undefined ? { blockNumber: q.block } : {}),
          ...(q.operator ? { operator: q.operator } : {}),
          ...after(decodeCursor(q.cursor)),
        },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
        take: q.limit + 1,
      });
      const { items, nextCursor } = paged(rows, q.limit);
      return {
        items: items.map((p) => ({
          blockNumber: p.blockNumber,
          jobId: p.jobId,
          operator: p.operator,
          worker: p.workerId,
          kind: p.kind,
          amount: p.amount.toFixed(),
          createdAt: Number(p.createdAt),
        })),
        nextCursor,
      };
    },
  );
  r.get(
    "/v1/workers",
    {
      schema: {
        tags: ["data"],
        summary: "Signed-in workers with their declared capacity, job types and hardware",
        querystring: z.object({ ...page, operator: address.optional() }),
      },
    },
    async (req) => {
      const q = req.query;
      const now = ctx.now();
      const rows = await ctx.prisma.workerSession.findMany({
        where: {
          expiresAt: { gt: BigInt(now) },
          ...(q.operator ? { operator: q.operator } : {}),
          ...after(decodeCursor(q.cursor)),
        },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
        take: q.limit + 1,
      });
      const { items, nextCursor } = paged(rows, q.limit);
      const leases = await Promise.all(items.map((s) => ctx.broker.liveCount(s.id)));
      return {
        items: items.map((s, i) => ({
          sessionId: s.id,
          operator: s.operator,
          workerId: s.workerName,
          capacity: s.capacity,
          jobTypes: s.jobTypes,
          hardware: s.hardware,
          leases: leases[i],
          expiresAt: Number(s.expiresAt),
          createdAt: Number(s.createdAt),
        })),
        nextCursor,
      };
    },
  );
}
