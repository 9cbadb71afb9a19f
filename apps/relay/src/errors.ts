// One error body everywhere: { error: { code, message, requestId } }, codes from a closed set.
//
// A dependency that is down, stalled or overloaded is not the client's fault nor a bug: errors
// that say so (connection refused, reset or closed, a connect or reply deadline passed, the pool
// could not hand out a connection, Redis loading or out of memory) become 503 UNAVAILABLE with a
// Retry-After, so clients back off and retry, and an operator's 500 alerts stay meaningful. They
// are recognized on the error and along its causes, as pg, Prisma's driver adapter, Prisma and
// ioredis each wrap them differently.

import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { errorBody, errorStatus, inputErrorCode } from "@prover-boost/contract";
import { DomainError, type ErrorCode } from "@prover-boost/core";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

/** Seconds a client is told to wait before retrying a 503. */
export const RETRY_AFTER_SECONDS = 2;

/** Prisma: cannot reach, timed out, server closed the connection, pool timeout, too many. */
const prismaUnavailable = new Set(["P1001", "P1002", "P1008", "P1017", "P2024", "P2037"]);
/** Prisma driver adapter error kinds that mean the database is not there right now. */
const adapterUnavailable = new Set([
  "DatabaseNotReachable",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
]);
/** Socket errors on either dependency's link. */
const socketCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);
/** Postgres SQLSTATEs: connection exceptions (08), shutting down / starting up, too many. */
const sqlStateUnavailable = (s: string) => /^08|^57P0[123]$|^53300$/.test(s);
const pgMessages =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable|Client was closed|Cannot use a pool after calling end/;
const redisMessages =
  /^Command timed out|^Connection is closed|^Command aborted due to connection close|enableOfflineQueue options is false|max retries per request|^(LOADING|BUSY|MASTERDOWN|READONLY|OOM|MISCONF|TRYAGAIN|CLUSTERDOWN)\b/;

type Dependency = "database" | "redis" | "backend";

/**
 * Whether an error says a dependency is down, stalled or overloaded (answered 503 UNAVAILABLE),
 * rather than anything about the request.
 */
export function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "P2028" || code === "P2024" || unavailableDependency(err) !== null;
}

/** Which dependency an error says is unavailable, if any (looks along its causes). */
export function unavailableDependency(err: unknown): Dependency | null {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e && typeof e === "object"; depth++) {
    const o = e as {
      code?: unknown;
      kind?: unknown;
      name?: unknown;
      message?: unknown;
      cause?: unknown;
      meta?: { driverAdapterError?: unknown };
    };
    const code = typeof o.code === "string" ? o.code : "";
    const message = typeof o.message === "string" ? o.message : "";
    if (prismaUnavailable.has(code)) return "database";
    if (typeof o.kind === "string" && adapterUnavailable.has(o.kind)) return "database";
    if (o.kind === "postgres" && sqlStateUnavailable(code)) return "database";
    if (o.name === "PrismaClientInitializationError") return "database";
    if (pgMessages.test(message)) return "database";
    if (o.name === "MaxRetriesPerRequestError" || redisMessages.test(message)) return "redis";
    // A bare socket error does not say whose link it was on.
    if (socketCodes.has(code)) return "backend";
    e = o.meta?.driverAdapterError ?? o.cause;
  }
  return null;
}

export { errorBody };

export function sendError(reply: FastifyReply, code: ErrorCode, message: string) {
  if ((code === "UNAVAILABLE" || code === "L1_UNAVAILABLE") && !reply.hasHeader("retry-after")) {
    reply.header("retry-after", String(RETRY_AFTER_SECONDS));
  }
  return reply.status(errorStatus[code]).send(errorBody(code, message, String(reply.request.id)));
}

const isSignatureIssue = (v: unknown) =>
  (v as { instancePath?: unknown }).instancePath === "/signature";

/** The contract's code and message for an error thrown while handling a request. */
export function classifyError(err: FastifyError & { validation?: unknown }): {
  code: ErrorCode;
  message: string;
} {
  if (err instanceof DomainError) return { code: err.code, message: err.message };
  if (Array.isArray(err.validation)) {
    // A signed body whose only fault is its signature (absent, or longer than any): the contract's
    // 401 for a bad or missing signature, as for one that recovers no signer.
    if (err.validation.length > 0 && err.validation.every(isSignatureIssue)) {
      return { code: "BAD_SIGNATURE", message: `signature: ${err.message}` };
    }
    // A primitive's stable code (a bad address checksum, a non-canonical integer) when it has one.
    return { code: inputErrorCode(err.validation) ?? "VALIDATION_FAILED", message: err.message };
  }
  if (err.validation) return { code: "VALIDATION_FAILED", message: err.message };
  switch (err.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return { code: "PAYLOAD_TOO_LARGE", message: "request body is too large" };
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return { code: "UNSUPPORTED_MEDIA_TYPE", message: "send application/json" };
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return { code: "INVALID_JSON", message: "request body is not valid JSON" };
  }
  if (err.statusCode === 429) return { code: "RATE_LIMITED", message: err.message };
  // Prisma: could not get a connection or finish a transaction in time (overload).
  if ((err as { code?: string }).code === "P2028" || (err as { code?: string }).code === "P2024") {
    return { code: "UNAVAILABLE", message: "the relay is overloaded; retry shortly" };
  }
  const down = unavailableDependency(err);
  if (down) return { code: "UNAVAILABLE", message: `the ${down} is unavailable; retry shortly` };
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
    return { code: "INVALID_JSON", message: "request body is not valid JSON" };
  }
  if (err.statusCode === 413)
    return { code: "PAYLOAD_TOO_LARGE", message: "request body is too large" };
  if (err.statusCode === 415)
    return { code: "UNSUPPORTED_MEDIA_TYPE", message: "send application/json" };
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return { code: "VALIDATION_FAILED", message: err.message };
  }
  return { code: "INTERNAL", message: "internal error" };
}

declare module "fastify" {
  interface FastifyRequest {
    /** The contract's error code this request was answered with, if it failed (for metrics). */
    errorCode: ErrorCode | null;
  }
}

export function installErrorHandling(app: FastifyInstance) {
  app.decorateRequest("errorCode", null);
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { code, message } = classifyError(err);
    request.errorCode = code;
    if (code === "INTERNAL") request.log.error({ err }, "unhandled error");
    if (code === "UNAVAILABLE") {
      request.log.warn({ err: { message: err.message, code: err.code } }, message);
      reply.header("retry-after", String(RETRY_AFTER_SECONDS));
    }
    if (code === "L1_UNAVAILABLE") reply.header("retry-after", String(RETRY_AFTER_SECONDS));
    const headers = (err as { headers?: Record<string, string> }).headers;
    if (code === "RATE_LIMITED" && headers) reply.headers(headers);
    return reply.status(errorStatus[code]).send(errorBody(code, message, String(request.id)));
  });
  // Every route's method and path pattern, so that a known path with the wrong method is a 405
  // (with Allow) rather than a 404.
  const routes: { re: RegExp; methods: string[] }[] = [];
  app.addHook("onRoute", (route) => {
    const pattern = route.url
      .split("/")
      .map((piece) =>
        piece.startsWith(":")
          ? "[^/]+"
          : piece === "*"
            ? ".*"
            : piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
      )
      .join("/");
    routes.push({ re: new RegExp(`^${pattern}$`), methods: [route.method].flat() });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    const allowed = [
      ...new Set(routes.filter((r) => r.re.test(path)).flatMap((r) => r.methods)),
    ].sort();
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      return reply
        .status(405)
        .header("allow", allowed.join(", "))
        .send(
          errorBody(
            "METHOD_NOT_ALLOWED",
            `${request.method} is not allowed on ${path}; allowed: ${allowed.join(", ")}`,
            String(request.id),
          ),
        );
    }
    return reply
      .status(404)
      .send(
        errorBody("NOT_FOUND", `no route ${request.method} ${request.url}`, String(request.id)),
      );
  });
}

/**
 * Fastify's `clientErrorHandler`: errors Node's HTTP parser and timers raise before there is a
 * request (headers too large, a request that did not arrive in time, a malformed request line)
 * answered in the contract's error shape, where Node alone would write a bare status line.
 */
export function clientErrorHandler(
  this: FastifyInstance,
  err: Error & { code?: string },
  socket: Duplex,
) {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  // An answer to an earlier request on this connection still being written (a long poll under
  // pipelining): nothing can be written after it safely, so the connection is dropped.
  const inFlight = (socket as { _httpMessage?: { writableEnded?: boolean } | null })._httpMessage;
  if (!socket.writable || (inFlight && !inFlight.writableEnded)) {
    socket.destroy();
    return;
  }
  const [status, code, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? ([431, "HEADERS_TOO_LARGE", "request headers are too large"] as const)
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? ([408, "REQUEST_TIMEOUT", "the request did not arrive in time"] as const)
        : ([400, "VALIDATION_FAILED", "malformed HTTP request"] as const);
  const requestId = randomUUID();
  this.log.debug({ err: { code: err.code, message: err.message }, requestId }, message);
  const body = JSON.stringify(errorBody(code, message, requestId));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      "connection: close\r\n" +
      "content-type: application/json; charset=utf-8\r\n" +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `x-request-id: ${requestId}\r\n\r\n${body}`,
  );
}
