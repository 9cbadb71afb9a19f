// Worker sign-in and sign-out, and the list of signed-in workers.
import { operations } from "@prover-boost/contract";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { sessionOf } from "../../auth.ts";
import type { RelayContext } from "../../context.ts";
import { endSession } from "../../services/gateway.ts";
import { createSession } from "../../services/sessions.ts";
import { listWorkers } from "../../services/views.ts";
import { schemaOf } from "../operation.ts";

export function registerWorkerRoutes(app: FastifyInstance, ctx: RelayContext) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { createSession: signIn, endSession: signOut, listWorkers: list } = operations;
  r.route({
    method: signIn.method,
    url: signIn.path,
    schema: schemaOf(signIn),
    handler: async (req, reply) => {
      const session = await createSession(ctx, req.body);
      return reply.status(201).send(session);
    },
  });
  r.route({
    method: signOut.method,
    url: signOut.path,
    schema: schemaOf(signOut),
    handler: async (req) => endSession(ctx, sessionOf(req), req.body?.keep ?? []),
  });
  r.route({
    method: list.method,
    url: list.path,
    schema: schemaOf(list),
    handler: async (req) => listWorkers(ctx, req.query),
  });
}
