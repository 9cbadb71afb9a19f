// The relay as a Fastify plugin-built app: validation with zod, one error shape, OpenAPI at /docs.
import { randomUUID } from "node:crypto";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from "fastify";
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from "fastify-type-provider-zod";
import type { RelayContext } from "./context.ts";
import { errorBody, installErrorHandling } from "./errors.ts";
import { registerMetrics } from "./metrics.ts";
import { type LimiterRedis, registerRateLimits } from "./rate-limits.ts";
import { registerAdminRoutes } from "./routes/admin.ts";
import { registerAuctionRoutes } from "./routes/auctions.ts";
import { registerBidRoutes } from "./routes/bids.ts";
import { registerDataRoutes } from "./routes/data.ts";
import { registerEventRoutes } from "./routes/events.ts";
import { registerHealthRoutes } from "./routes/health.ts";
import { registerPublicRoutes } from "./routes/public.ts";
import { registerWorkerRoutes } from "./routes/workers.ts";

export interface AppOptions {
  logger?: FastifyBaseLogger | boolean;
  /** Largest request body accepted (BODY_LIMIT_BYTES). */
  bodyLimitBytes: number;
  /** Where the rate limiter counts (its own connection). */
  limiterRedis: LimiterRedis;
}

export async function buildApp(ctx: RelayContext, options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(typeof options.logger === "object"
      ? { loggerInstance: options.logger }
      : { logger: options.logger ?? false }),
    bodyLimit: options.bodyLimitBytes,
    genReqId: () => randomUUID(),
    requestTimeout: 60_000,
    // On shutdown, end long polls and keep-alive connections at once; clients retry elsewhere.
    forceCloseConnections: true,
    // Router-level failures (a malformed URL, an over-long path parameter) in the contract's shape.
    frameworkErrors: (err, req, reply) => {
      const body = errorBody(
        "VALIDATION_FAILED",
        `malformed request: ${err.message}`,
        String(req.id),
      );
      void (reply as unknown as FastifyReply)
        .status(400)
        .header("x-request-id", String(req.id))
        .send(body);
    },
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);
  app.addHook("onSend", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: "prover-boost relay API",
        version: "1.0.0",
        description:
          "Proving auctions, bids, the worker gateway and public market data. Amounts are decimal strings of wei.",
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  registerMetrics(app);
  await registerRateLimits(app, ctx.settings.rateLimits, options.limiterRedis);
  registerHealthRoutes(app, ctx);
  registerAuctionRoutes(app, ctx);
  registerBidRoutes(app, ctx);
  registerWorkerRoutes(app, ctx);
  registerPublicRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  registerDataRoutes(app, ctx);
  registerEventRoutes(app, ctx);
  return app;
}
