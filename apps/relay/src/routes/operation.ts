// Fastify route schemas from the contract's operations: request schemas, every success response
// with its real status, the error body under each error status the operation can answer with,
// the bearer scheme on authenticated operations and the operation id.
import { errorBodySchema, errorStatus, errorsOf, type Operation } from "@prover-boost/contract";
import type { FastifySchema } from "fastify";
import { ResponseSerializationError } from "fastify-type-provider-zod";
import { z } from "zod";

/** The request schemas of an operation, typed for the zod type provider. */
type RequestSchemas<O extends Operation> = {
  params: O extends { params: infer P } ? P : undefined;
  querystring: O extends { query: infer Q } ? Q : undefined;
  body: O extends { body: infer B } ? B : undefined;
};

export function schemaOf<O extends Operation>(o: O): FastifySchema & RequestSchemas<O> {
  const response: Record<string, unknown> = {};
  for (const [status, schema] of Object.entries(o.responses)) {
    response[status] = o.contentType
      ? { description: schema.description, content: { [o.contentType]: { schema } } }
      : schema;
  }
  for (const code of errorsOf(o)) response[String(errorStatus[code])] = errorBodySchema;
  const schema: FastifySchema & Record<string, unknown> = {
    operationId: o.operationId,
    tags: o.tags,
    summary: o.summary,
    response,
  };
  if (o.description) schema.description = o.description;
  if (o.params) schema.params = o.params;
  if (o.query) schema.querystring = o.query;
  if (o.body) schema.body = o.body;
  if (o.auth) schema.security = [{ bearer: [] }];
  return schema as FastifySchema & RequestSchemas<O>;
}

/**
 * Checks every answer against its declared schema and sends it exactly as the handler built it
 * (no re-encoding, so key order and values are the handler's). An answer that does not match the
 * contract is a relay bug: a 500, never a silently different body.
 */
export function contractSerializer({
  schema,
  method,
  url,
}: {
  schema: unknown;
  method: string;
  url: string;
}) {
  if (!(schema instanceof z.ZodType)) return (data: unknown) => JSON.stringify(data);
  return (data: unknown) => {
    const checked = schema.safeParse(data);
    if (!checked.success) {
      throw new ResponseSerializationError(method, url, { cause: checked.error });
    }
    return JSON.stringify(data);
  };
}
