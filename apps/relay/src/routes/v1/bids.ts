// Prover operators: submitting and withdrawing signed bids.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../../context.ts";
import { cancelBid, submitBid } from "../../services/bids.ts";
import { schemaOf } from "../operation.ts";

export function registerBidRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { submitBid: submit, cancelBid: cancel } = operations;
  r.route({
    method: submit.method,
    url: submit.path,
    schema: schemaOf(submit),
    // Every answer counts, rejections by their stable code (validation and rate limits too).
    onResponse: async (req, reply) => {
      const outcome =
        reply.statusCode < 400 ? "accepted" : (req.errorCode ?? `HTTP_${reply.statusCode}`);
      ctx.metrics.bids.inc({ outcome });
    },
    handler: async (req, reply) => {
      const { bidId, status } = await submitBid(ctx, req.body.quote, req.body.signature);
      return reply.status(202).send({ bidId, status });
    },
  });
  r.route({
    method: cancel.method,
    url: cancel.path,
    schema: schemaOf(cancel),
    handler: async (req) => cancelBid(ctx, req.params.blockNumber, req.params.prover, req.body),
  });
}
