// The relay as a Fastify plugin-built app: validation with zod, one error shape, OpenAPI at /docs.
import { randomUUID } from "node:crypto";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from "fastify";
import { jsonSchemaTransform, validatorCompiler } from "fastify-type-provider-zod";
import { z } from "zod";
import { registerAuthentication } from "./auth.ts";
import type { RelayContext } from "./context.ts";
import { clientErrorHandler, errorBody, installErrorHandling } from "./errors.ts";
import { registerExplorer } from "./explorer.ts";
import { registerMetrics } from "./metrics.ts";
import { registerQueueBoard } from "./queue-board.ts";
import { type LimiterRedis, registerRateLimits } from "./rate-limits.ts";
import { registerHealthRoutes } from "./routes/health.ts";
import { contractSerializer } from "./routes/operation.ts";
import { registerAdminRoutes } from "./routes/v1/admin.ts";
import { registerAuctionRoutes } from "./routes/v1/auctions.ts";
import { registerBidRoutes } from "./routes/v1/bids.ts";
import { registerBlockRoutes } from "./routes/v1/blocks.ts";
import { registerDataRoutes } from "./routes/v1/data.ts";
import { registerEventRoutes } from "./routes/v1/events.ts";
import { registerInfoRoutes } from "./routes/v1/info.ts";
import { registerArrivalStamps, registerJobRoutes } from "./routes/v1/jobs.ts";
import { registerProverRoutes } from "./routes/v1/provers.ts";
import { registerWorkerRoutes } from "./routes/v1/workers.ts";

export interface AppOptions {
  logger?: FastifyBaseLogger | boolean;
  /** Largest request body accepted (BODY_LIMIT_BYTES). */
  bodyLimitBytes: number;
  /** Time a client has to send a whole request (REQUEST_TIMEOUT_MS); then 408. */
  requestTimeoutMs?: number;
  /** Where the rate limiter counts (its own connection). */
  limiterRedis: LimiterRedis;
  /** Whom to believe about the client's address (TRUST_PROXY); default false: the TCP peer. */
  trustProxy?: boolean | number | string[];
}

function trustHops(hops: number) {
  return (_address: string, hop: number) => hop < hops;
}

export async function buildApp(ctx: RelayContext, options: AppOptions): Promise<FastifyInstance> {
  const requestTimeout = options.requestTimeoutMs ?? 60_000;
  const app = Fastify({
    ...(typeof options.logger === "object"
      ? { loggerInstance: options.logger }
      : { logger: options.logger ?? false }),
    bodyLimit: options.bodyLimitBytes,
    // Behind a TLS-terminating proxy the TCP peer is the proxy: with TRUST_PROXY set, req.ip
    // (which the per-IP limits count by) is the client the proxy names in X-Forwarded-For.
    // A hop count trusts that many proxies nearest the relay.
    trustProxy:
      typeof options.trustProxy === "number"
        ? trustHops(options.trustProxy)
        : (options.trustProxy ?? false),
    genReqId: () => randomUUID(),
    // A client has this long to send its whole request (slow-header and slow-body clients hold
    // a connection otherwise); Node checks open connections a few times per timeout.
    requestTimeout,
    http: {
      requestTimeout,
      headersTimeout: requestTimeout,
      connectionsCheckingInterval: Math.max(25, Math.min(30_000, Math.floor(requestTimeout / 4))),
    },
    // On shutdown, end long polls and keep-alive connections at once; clients retry elsewhere.
    forceCloseConnections: true,
    // 431, 408 and malformed requests, which Node raises before there is a request to route.
    clientErrorHandler,
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
  app.setSerializerCompiler(contractSerializer);
  installErrorHandling(app);
  // First of all hooks: lease holders' requests are stamped as they are read (services/load.ts).
  registerArrivalStamps(app, ctx);
  app.addHook("onSend", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: "prover-boost relay API",
        version: "1.0.0",
        description:
          "Proving auctions, bids, the worker gateway and public market data. Amounts are decimal " +
          "strings of wei; block numbers, slots, counts and unix ms times are JSON numbers or " +
          "decimal strings. Integers in paths and queries are canonical decimal (400 " +
          "INVALID_INTEGER otherwise). Addresses are checksummed or in one case (a mixed-case " +
          "address with a wrong EIP-55 checksum is 400 BAD_ADDRESS_CHECKSUM). Authenticated " +
          "calls answer 401 before looking at the body. Every error is " +
          "{ error: { code, message, requestId } }.",
      },
      components: {
        securitySchemes: {
          bearer: {
            type: "http",
            scheme: "bearer",
            description: "A worker session token (POST /v1/workers/sessions) or the admin token",
          },
        },
      },
    },
    transform: openApiTransform,
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  registerMetrics(app, ctx.metrics);
  await registerRateLimits(app, ctx.settings.rateLimits, options.limiterRedis);
  registerAuthentication(app, ctx);
  registerHealthRoutes(app, ctx);
  registerInfoRoutes(app, ctx);
  registerAuctionRoutes(app, ctx);
  registerBidRoutes(app, ctx);
  registerWorkerRoutes(app, ctx);
  registerJobRoutes(app, ctx);
  registerBlockRoutes(app, ctx);
  registerEventRoutes(app, ctx);
  registerProverRoutes(app, ctx);
  registerDataRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  // The explorer at / (static files over the public API above).
  registerExplorer(app);
  await registerQueueBoard(app, ctx);
  return app;
}

/** The zod route schemas as OpenAPI; a bodiless success (204) is declared without content. */
const openApiTransform: typeof jsonSchemaTransform = (document) => {
  const out = jsonSchemaTransform(document);
  const responses = (document.schema as { response?: Record<string, unknown> } | undefined)
    ?.response;
  const transformed = (out.schema as { response?: Record<string, unknown> } | undefined)?.response;
  for (const [status, schema] of Object.entries(responses ?? {})) {
    if (schema instanceof z.ZodNull && transformed) {
      transformed[status] = { type: "null", description: schema.description ?? "No content" };
    }
  }
  return out;
};
