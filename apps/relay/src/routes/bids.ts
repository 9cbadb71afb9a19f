import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { RelayContext } from "../context.ts";
import { perProverLimit } from "../rate-limits.ts";
import { address, blockNumber, bps, signature, smallInt, uintString } from "../schemas.ts";
import { cancelBid, submitBid } from "../services/bids.ts";

export const bidBody = z.object({
  quote: z.object({
    epochToProve: blockNumber,
    validUntilSlot: smallInt,
    bondAmount: uintString,
    prover: address,
    basisPointFee: bps,
  }),
  signature,
});

export function registerBidRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post(
    "/v1/bids",
    {
      schema: { tags: ["prover"], summary: "Submit a signed EpochProofQuote", body: bidBody },
      ...perProverLimit(ctx.settings.rateLimits),
    },
    async (req, reply) => {
      const { bidId, status } = await submitBid(ctx, req.body.quote, req.body.signature);
      return reply.status(202).send({ bidId, status });
    },
  );
  r.delete(
    "/v1/bids/:blockNumber/:prover",
    {
      schema: {
        tags: ["prover"],
        summary: "Withdraw an open bid with a signed BidCancellation",
        params: z.object({
          blockNumber: z.coerce.number().int().min(0).max(2_147_483_647),
          prover: address,
        }),
        body: z.object({ issuedAt: smallInt, signature }),
      },
    },
    async (req) =>
      cancelBid(
        ctx,
        req.params.blockNumber,
        req.params.prover,
        req.body.issuedAt,
        req.body.signature,
      ),
  );
}
