// Admin calls (ledger mode): crediting collateral. Authenticated by ADMIN_TOKEN.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../../context.ts";
import { creditDeposit } from "../../services/admin.ts";
import { schemaOf } from "../operation.ts";

export function registerAdminRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { deposit } = operations;
  r.route({
    method: deposit.method,
    url: deposit.path,
    schema: schemaOf(deposit),
    handler: async (req, reply) => {
      // Authenticated by ADMIN_TOKEN before validation (see auth.ts).
      const { prover, amount, reference } = req.body;
      const credited = await creditDeposit(ctx, prover, amount, reference);
      return reply.status("replayed" in credited ? 200 : 201).send(credited);
    },
  });
}
