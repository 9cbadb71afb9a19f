// Public block views: stage history, tree progress, payouts, and the proof tree.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { RelayContext } from "../../context.ts";
import { getBlockView, getProofView, getTreeView, getTxView } from "../../services/blocks.ts";
import { schemaOf } from "../operation.ts";

export function registerBlockRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { getBlock, getTree, getProof, getTx } = operations;
  r.route({
    method: getBlock.method,
    url: getBlock.path,
    schema: schemaOf(getBlock),
    handler: async (req) => getBlockView(ctx, req.params.blockNumber),
  });
  r.route({
    method: getTree.method,
    url: getTree.path,
    schema: schemaOf(getTree),
    handler: async (req) => getTreeView(ctx, req.params.blockNumber),
  });
  r.route({
    method: getTx.method,
    url: getTx.path,
    schema: schemaOf(getTx),
    handler: async (req) => getTxView(ctx, req.params.blockNumber, req.params.index),
  });
  r.route({
    method: getProof.method,
    url: getProof.path,
    schema: schemaOf(getProof),
    handler: async (req) => getProofView(ctx, req.params.blockNumber, req.params.jobId),
  });
}
