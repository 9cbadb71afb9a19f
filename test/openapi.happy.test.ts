// The OpenAPI document at /docs/json describes the contract: every operation has an operationId,
// every response is declared with its real status (none is the generated "Default Response"),
// error statuses carry the error body, and authenticated operations carry the bearer scheme.
import { errorStatus, operations } from "@prover-boost/contract";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "./harness.ts";

let stack: Stack;
let doc: {
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, { type: string; scheme?: string }> };
};

interface Operation {
  operationId?: string;
  security?: Record<string, string[]>[];
  responses: Record<string, { description: string; content?: Record<string, unknown> }>;
}

beforeAll(async () => {
  stack = await startStack({ aggregator: false });
  const res = await stack.relay.app.inject({ method: "GET", url: "/docs/json" });
  expect(res.statusCode).toBe(200);
  doc = res.json();
});
afterAll(async () => stack?.close());

const allOperations = () =>
  Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ path, method, op })),
  );

describe("the OpenAPI document", () => {
  it("lists every operation of the contract, each with its operationId", () => {
    const ids = allOperations().map(({ op }) => op.operationId);
    expect(ids.every((id) => typeof id === "string" && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(Object.keys(operations).sort());
  });

  it("declares real statuses, never the generated Default Response", () => {
    for (const { path, method, op } of allOperations()) {
      const contract = Object.values(operations).find((o) => o.operationId === op.operationId)!;
      for (const status of Object.keys(contract.responses)) {
        expect(op.responses[status], `${method} ${path} ${status}`).toBeDefined();
      }
      for (const [status, response] of Object.entries(op.responses)) {
        expect(response.description, `${method} ${path} ${status}`).not.toBe("Default Response");
      }
    }
    const created = doc.paths["/v1/auctions"]!.post!.responses;
    expect(Object.keys(created)).toContain("201");
    expect(Object.keys(created)).not.toContain("200");
    expect(Object.keys(doc.paths["/v1/bids"]!.post!.responses)).toContain("202");
    const lease = doc.paths["/v1/jobs/lease"]!.post!.responses;
    expect(lease["204"]).toBeDefined();
    expect(lease["204"]!.content).toBeUndefined();
  });

  it("gives every error status the one error body", () => {
    for (const { path, method, op } of allOperations()) {
      const errors = Object.entries(op.responses).filter(([s]) => Number(s) >= 400);
      expect(errors.length, `${method} ${path}`).toBeGreaterThan(0);
      for (const [status, response] of errors) {
        const schema = JSON.stringify(response.content?.["application/json"]);
        expect(schema, `${method} ${path} ${status}`).toContain('"requestId"');
        expect(schema, `${method} ${path} ${status}`).toContain('"UNAVAILABLE"');
      }
    }
    // Each operation's own codes are there under their statuses.
    const cancel = doc.paths["/v1/bids/{blockNumber}/{prover}"]!.delete!.responses;
    expect(cancel[String(errorStatus.BID_NOT_FOUND)]).toBeDefined();
    expect(cancel[String(errorStatus.AUCTION_CLOSED)]).toBeDefined();
  });

  it("puts the bearer scheme on the admin and worker job operations and the sign-out, and only there", () => {
    const scheme = doc.components?.securitySchemes?.bearer;
    expect(scheme).toMatchObject({ type: "http", scheme: "bearer" });
    for (const { path, method, op } of allOperations()) {
      const authenticated =
        path.startsWith("/v1/admin/") ||
        path.startsWith("/v1/jobs/") ||
        path === "/v1/workers/sessions/current";
      if (authenticated) expect(op.security, `${method} ${path}`).toEqual([{ bearer: [] }]);
      else expect(op.security, `${method} ${path}`).toBeUndefined();
    }
  });
});
