// GET /v1/info: what clients need to sign and schedule against this relay.
import { operations } from "@prover-boost/contract";
import { activeSignatureBackend } from "@prover-boost/core";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../../context.ts";
import { schemaOf } from "../operation.ts";

export function registerInfoRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { getInfo } = operations;
  r.route({
    method: getInfo.method,
    url: getInfo.path,
    schema: schemaOf(getInfo),
    handler: async () => ({
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
      pricing: ctx.settings.pricing,
      leaseMs: ctx.broker.leaseMs,
      scheduling: ctx.settings.scheduling.mode,
      maxRetryableFailsPerWorker: ctx.settings.scheduling.maxRetryableFailsPerWorker,
      jobMinTier: { ...ctx.settings.jobMinTier },
      signatureBackend: ctx.signatureBackend ?? activeSignatureBackend(),
      proofSystem: ctx.settings.proofs.system,
      collateral: ctx.settings.escrow
        ? {
            mode: "chain" as const,
            escrow: ctx.settings.escrow.address,
            confirmations: ctx.settings.escrow.confirmations,
          }
        : { mode: "ledger" as const },
    }),
  });
}
