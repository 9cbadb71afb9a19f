import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { RelayContext } from "../context.ts";
import {
  blockNumber,
  blockParam,
  bps,
  bytes32,
  signature,
  smallInt,
  uintString,
} from "../schemas.ts";
import { getAuctionView, openAuction } from "../services/auctions.ts";

export const openAuctionBody = z.object({
  auction: z.object({
    blockNumber,
    slot: smallInt,
    txCount: z.number().int().min(0).max(65_536),
    txsHash: bytes32,
    blockReward: uintString,
    minBond: uintString,
    maxFeeBps: bps,
    biddingClosesAt: smallInt,
    proofDeadline: smallInt,
  }),
  txs: z.array(bytes32).max(65_536),
  signature,
});

export function registerAuctionRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post(
    "/v1/auctions",
    {
      schema: {
        tags: ["sequencer"],
        summary: "Open a proving auction for a block",
        body: openAuctionBody,
      },
    },
    async (req, reply) => {
      const auction = await openAuction(ctx, req.body);
      return reply.status(201).send({ auction, status: "open" });
    },
  );
  r.get(
    "/v1/auctions/:blockNumber",
    {
      schema: {
        tags: ["sequencer"],
        summary: "Read an auction (bids sealed while open)",
        params: blockParam,
      },
    },
    async (req) => getAuctionView(ctx, req.params.blockNumber),
  );
}
