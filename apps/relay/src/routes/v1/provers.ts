// Public prover records: collateral, blocks won, proofs delivered, penalties, earnings.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../../context.ts";
import { getProverView } from "../../services/views.ts";
import { schemaOf } from "../operation.ts";

export function registerProverRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { getProver } = operations;
  r.route({
    method: getProver.method,
    url: getProver.path,
    schema: schemaOf(getProver),
    handler: async (req) => getProverView(ctx, req.params.address),
  });
}
