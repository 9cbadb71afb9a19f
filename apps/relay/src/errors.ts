// One error body everywhere: { error: { code, message, requestId } }, codes from a closed set.
import { DomainError, type ErrorCode, errorStatus } from "@prover-boost/core";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

export function errorBody(code: ErrorCode, message: string, requestId: string) {
  return { error: { code, message, requestId } };
}

export function sendError(reply: FastifyReply, code: ErrorCode, message: string) {
  return reply.status(errorStatus[code]).send(errorBody(code, message, String(reply.request.id)));
}

function classify(err: FastifyError & { validation?: unknown }): {
  code: ErrorCode;
  message: string;
} {
  if (err instanceof DomainError) return { code: err.code, message: err.message };
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

export function installErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { code, message } = classify(err);
    if (code === "INTERNAL") request.log.error({ err }, "unhandled error");
    const headers = (err as { headers?: Record<string, string> }).headers;
    if (code === "RATE_LIMITED" && headers) reply.headers(headers);
    return reply.status(errorStatus[code]).send(errorBody(code, message, String(request.id)));
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send(
        errorBody("NOT_FOUND", `no route ${request.method} ${request.url}`, String(request.id)),
      ),
  );
}
