// Sequencers: opening and reading proving auctions; the public auction list.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../../context.ts";
import { getAuctionView, openAuction } from "../../services/auctions.ts";
import { schemaOf } from "../operation.ts";

export function registerAuctionRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { openAuction: open, getAuction } = operations;
  r.route({
    method: open.method,
    url: open.path,
    schema: schemaOf(open),
    handler: async (req, reply) => {
      const auction = await openAuction(ctx, req.body);
      return reply.status(201).send({ auction, status: "open" });
    },
  });
  r.route({
    method: getAuction.method,
    url: getAuction.path,
    schema: schemaOf(getAuction),
    handler: async (req) => getAuctionView(ctx, req.params.blockNumber),
  });
}
