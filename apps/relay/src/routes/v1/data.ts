// The public data API: auctions, bids (sealed while their auction is open), payouts, penalties.
// Pages are newest first; `cursor` is the opaque position after which the next page starts.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../../context.ts";
import { listAuctions, listBids, listPayouts, listPenalties } from "../../services/views.ts";
import { schemaOf } from "../operation.ts";

export function registerDataRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const ops = operations;
  r.route({
    method: ops.listAuctions.method,
    url: ops.listAuctions.path,
    schema: schemaOf(ops.listAuctions),
    handler: async (req) => listAuctions(ctx, req.query),
  });
  r.route({
    method: ops.listBids.method,
    url: ops.listBids.path,
    schema: schemaOf(ops.listBids),
    handler: async (req) => listBids(ctx, req.query),
  });
  r.route({
    method: ops.listPayouts.method,
    url: ops.listPayouts.path,
    schema: schemaOf(ops.listPayouts),
    handler: async (req) => listPayouts(ctx, req.query),
  });
  r.route({
    method: ops.listPenalties.method,
    url: ops.listPenalties.path,
    schema: schemaOf(ops.listPenalties),
    handler: async (req) => listPenalties(ctx, req.query),
  });
}
