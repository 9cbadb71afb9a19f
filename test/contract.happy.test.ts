// Every route the relay registers answers as the contract says. The routes are enumerated from
// the relay's own OpenAPI document (a route added without being walked here fails the last test),
// each is called over real Postgres and Redis with a success case and at least one error case,
// and every answer must match the schema its operation declares for that status: the success
// body, or the one error body under a declared error status.
import {
  errorBodySchema,
  errorStatus,
  type Operation,
  type OperationId,
  operations,
} from "@prover-boost/contract";
import { simProof, txsHash } from "@prover-boost/core";
import {
  type LeasedJob,
  newWorkerLogin,
  signAuction,
  signBidCancellation,
  signWorkerLogin,
} from "@prover-boost/sdk";
import { keccak256, toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, allJobTypes, domain, openAuction, signedBid } from "./fixtures.ts";
import { ADMIN_TOKEN, eventually, type Stack, sequencer, startStack } from "./harness.ts";
import { openBlock, proveUntilPaid, signIn } from "./support/blocks.ts";

/**
 * Operations with no error a client can cause: they take no input. /readyz's 503 needs a
 * dependency down, which test/outage-database.error.test.ts does to a real Postgres.
 */
const noClientError = new Set<OperationId>(["livez", "readyz", "metrics", "getInfo"]);

let stack: Stack;
/** Operation id by "METHOD /path" as the OpenAPI document lists them. */
const documented = new Map<string, OperationId>();
/** Statuses seen per operation. */
const seen = new Map<OperationId, number[]>();

const prover = account(0xc1);
const bidder = account(0xc2);
const operator = account(0xc3);

beforeAll(async () => {
  stack = await startStack({ backend: "postgres" });
  const res = await stack.relay.app.inject({ method: "GET", url: "/docs/json" });
  const doc = res.json() as { paths: Record<string, Record<string, { operationId: string }>> };
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const fastifyPath = path.replace(/\{(\w+)\}/g, ":$1");
      documented.set(`${method.toUpperCase()} ${fastifyPath}`, op.operationId as OperationId);
    }
  }
});
afterAll(async () => stack?.close());

interface Call {
  params?: Record<string, string | number>;
  query?: Record<string, string | number>;
  body?: unknown;
  token?: string;
}

function urlOf(o: Operation, call: Call) {
  let url = o.path.replace(/:(\w+)/g, (_, k: string) =>
    encodeURIComponent(String(call.params?.[k] ?? "")),
  );
  const qs = new URLSearchParams(
    Object.entries(call.query ?? {}).map(([k, v]) => [k, String(v)] as [string, string]),
  );
  if (qs.size > 0) url += `?${qs}`;
  return url;
}

/** The schema the operation declares for a status, or null when that status is not declared. */
function declared(o: Operation, status: number) {
  const success = (o.responses as Record<number, unknown>)[status];
  if (success) return success as { safeParse(v: unknown): { success: boolean; error?: unknown } };
  const codes = Object.entries(errorStatus)
    .filter(([, s]) => s === status)
    .map(([c]) => c);
  return codes.length > 0 ? errorBodySchema : null;
}

function record(id: OperationId, status: number) {
  seen.set(id, [...(seen.get(id) ?? []), status]);
}

/** Calls an operation, checks the answer against its declared schema, returns status and body. */
// biome-ignore lint/suspicious/noExplicitAny: the body was just checked against its schema at run time
async function call(id: OperationId, c: Call = {}): Promise<{ status: number; body: any }> {
  const o: Operation = operations[id];
  expect(documented.get(`${o.method} ${o.path}`), `${id} is served`).toBe(id);
  const res = await stack.relay.app.inject({
    method: o.method,
    url: urlOf(o, c),
    headers: {
      ...(c.body !== undefined ? { "content-type": "application/json" } : {}),
      ...(c.token ? { authorization: `Bearer ${c.token}` } : {}),
    },
    ...(c.body !== undefined ? { payload: JSON.stringify(c.body) } : {}),
  });
  record(id, res.statusCode);
  // A 500 is a relay fault, which is also what an answer that does not match its schema becomes.
  expect(res.statusCode, `${id} failed: ${res.body}`).not.toBe(500);
  const schema = declared(o, res.statusCode);
  expect(
    schema,
    `${id} answered an undeclared status ${res.statusCode}: ${res.body}`,
  ).not.toBeNull();
  const body =
    res.statusCode === 204 ? null : o.contentType && res.statusCode < 400 ? res.body : res.json();
  if (res.statusCode >= 400) {
    // Error statuses: the one error body, with a code that belongs to this status.
    expect(errorStatus[body.error.code as keyof typeof errorStatus], `${id} ${res.body}`).toBe(
      res.statusCode,
    );
  }
  const checked = schema!.safeParse(body);
  expect(checked.success, `${id} ${res.statusCode} does not match its schema: ${res.body}`).toBe(
    true,
  );
  return { status: res.statusCode, body };
}

describe("every route answers as the contract declares", () => {
  it("ops and info", async () => {
    expect((await call("livez")).status).toBe(200);
    expect((await call("readyz")).status).toBe(200);
    expect((await call("metrics")).status).toBe(200);
    expect((await call("getInfo")).status).toBe(200);
  });

  it("admin deposits", async () => {
    const body = { prover: prover.address, amount: "1000000" };
    expect((await call("deposit", { body, token: ADMIN_TOKEN })).status).toBe(201);
    expect(
      (
        await call("deposit", {
          body: { prover: bidder.address, amount: "1000000" },
          token: ADMIN_TOKEN,
        })
      ).status,
    ).toBe(201);
    expect((await call("deposit", { body })).body.error.code).toBe("UNAUTHORIZED");
    expect(
      (await call("deposit", { body: { ...body, amount: "0" }, token: ADMIN_TOKEN })).status,
    ).toBe(400);
  });

  it("auctions", async () => {
    const open = await openAuction(501);
    expect((await call("openAuction", { body: open.body })).status).toBe(201);
    expect((await call("openAuction", { body: open.body })).body.error.code).toBe("AUCTION_EXISTS");
    expect((await call("getAuction", { params: { blockNumber: 501 } })).status).toBe(200);
    expect((await call("getAuction", { params: { blockNumber: 9_999 } })).status).toBe(404);

    // With the transactions' bytes: each is served by its position.
    const txData = [toHex("first tx"), toHex("second tx")];
    const txs = txData.map((d) => keccak256(d));
    const auction = {
      ...open.auction,
      blockNumber: 503,
      txCount: 2,
      txsHash: txsHash(txs),
    };
    const signature = await signAuction(sequencer, domain, auction);
    expect((await call("openAuction", { body: { auction, txs, txData, signature } })).status).toBe(
      201,
    );
    expect((await call("getTx", { params: { blockNumber: 503, index: 1 } })).body).toEqual({
      blockNumber: 503,
      index: 1,
      hash: txs[1],
      data: txData[1],
    });
    for (const [blockNumber, index] of [
      [503, 2],
      [501, 0],
    ] as const) {
      expect((await call("getTx", { params: { blockNumber, index } })).body.error.code).toBe(
        "TX_NOT_FOUND",
      );
    }
  });

  it("bids: submit and cancel", async () => {
    const bid = await signedBid(bidder, 501);
    const submitted = await call("submitBid", { body: bid });
    expect(submitted.status).toBe(202);
    const bidId = submitted.body.bidId as `0x${string}`;
    const missing = await signedBid(bidder, 9_999);
    expect((await call("submitBid", { body: missing })).body.error.code).toBe("AUCTION_NOT_FOUND");
    const issuedAt = Date.now();
    const signature = await signBidCancellation(bidder, domain, {
      bidId,
      prover: bidder.address,
      issuedAt,
    });
    const cancel = {
      params: { blockNumber: 501, prover: bidder.address },
      body: { bidId, issuedAt, signature },
    };
    expect((await call("cancelBid", cancel)).status).toBe(200);
    expect((await call("cancelBid", cancel)).body.error.code).toBe("AUTHORIZATION_REPLAYED");
  });

  it("worker sessions and the worker list", async () => {
    const login = newWorkerLogin({
      operator: operator.address,
      workerId: "walker",
      capacity: 1,
      jobTypes: allJobTypes,
    });
    const hardware = { cores: 2 };
    const signature = await signWorkerLogin(operator, domain, login);
    const forged = await signWorkerLogin(prover, domain, login);
    expect(
      (await call("createSession", { body: { login, hardware, signature: forged } })).status,
    ).toBe(401);
    const created = await call("createSession", { body: { login, hardware, signature } });
    expect(created.status).toBe(201);
    expect(
      (await call("createSession", { body: { login, hardware, signature } })).body.error.code,
    ).toBe("AUTHORIZATION_REPLAYED");
    const workers = await call("listWorkers", { query: { operator: operator.address } });
    expect(workers.body.items).toHaveLength(1);
    expect((await call("listWorkers", { query: { cursor: "nope" } })).status).toBe(400);
    const { token, sessionId } = created.body;
    expect((await call("endSession", { token })).body).toEqual({ sessionId, released: 0 });
    expect((await call("endSession", {})).body.error.code).toBe("UNAUTHORIZED");
  });

  it("jobs: lease, heartbeat, fail, result; then blocks, trees, payouts and the prover", async () => {
    const { client: worker, token } = await signIn(stack, prover, "prover-w");
    expect((await call("leaseJob", { body: { waitMs: 0 }, token })).status).toBe(204);
    expect((await call("leaseJob", { body: { waitMs: 0 } })).body.error.code).toBe("UNAUTHORIZED");
    await openBlock(stack, 502, { winner: prover, txCount: 2 });
    const leased = await eventually(async () => {
      const r = await call("leaseJob", { body: { waitMs: 500 }, token });
      return r.status === 200 ? (r.body.job as LeasedJob) : null;
    });
    const params = { id: leased.id };
    expect((await call("heartbeat", { params, token })).status).toBe(200);
    expect((await call("heartbeat", { params: { id: "nope" }, token })).status).toBe(404);
    // Handed back (retryable), leased again, then proven.
    const fail = { reason: "walk", retryable: true };
    expect((await call("failJob", { params, body: fail, token })).body.status).toBe("requeued");
    expect((await call("failJob", { params, body: fail, token })).body.error.code).toBe(
      "LEASE_LOST",
    );
    const again = await eventually(async () => {
      const r = await call("leaseJob", { body: { waitMs: 500 }, token });
      return r.status === 200 ? (r.body.job as LeasedJob) : null;
    });
    expect(
      (await call("submitResult", { params: { id: again.id }, body: { proof: "0x00" }, token }))
        .status,
    ).toBe(422);
    const third = await eventually(async () => {
      const r = await call("leaseJob", { body: { waitMs: 500 }, token });
      return r.status === 200 ? (r.body.job as LeasedJob) : null;
    });
    const good = simProof({ ...third, children: third.children.map((c) => c.proof) });
    expect(
      (await call("submitResult", { params: { id: third.id }, body: { proof: good }, token }))
        .status,
    ).toBe(200);
    await proveUntilPaid(stack, 502, [worker]);

    expect((await call("getBlock", { params: { blockNumber: 502 } })).body.stage).toBe("paid");
    expect((await call("getBlock", { params: { blockNumber: 9_999 } })).status).toBe(404);
    expect(
      (await call("getTree", { params: { blockNumber: 502 } })).body.nodes.length,
    ).toBeGreaterThan(0);
    expect((await call("getTree", { params: { blockNumber: 9_999 } })).status).toBe(404);
    const served = await call("getProof", { params: { blockNumber: 502, jobId: third.id } });
    expect(served.body).toMatchObject({ proofSystem: "sim", proof: good, publicInputs: [] });
    expect(
      (await call("getProof", { params: { blockNumber: 502, jobId: "502-99-0" } })).body.error.code,
    ).toBe("PROOF_NOT_FOUND");
    expect((await call("getProver", { params: { address: prover.address } })).body.blocksWon).toBe(
      1,
    );
    expect((await call("getProver", { params: { address: "0x12" } })).status).toBe(400);
  });

  it("the data lists, with items and with a bad cursor", async () => {
    for (const id of ["listAuctions", "listBids", "listPayouts", "listPenalties"] as const) {
      const first = await call(id, { query: { limit: 1 } });
      expect(first.status, id).toBe(200);
      if (first.body.nextCursor) {
        expect(
          (await call(id, { query: { limit: 1, cursor: first.body.nextCursor } })).status,
        ).toBe(200);
      }
      expect((await call(id, { query: { cursor: "99999999999999999999_x" } })).status, id).toBe(
        400,
      );
    }
    // 501, 502 and 503 (the one with its transactions' bytes).
    expect((await call("listAuctions")).body.items.length).toBe(3);
    expect(
      (await call("listPayouts", { query: { block: 502 } })).body.items.length,
    ).toBeGreaterThan(0);
    expect((await call("listBids", { query: { block: 502 } })).body.items.length).toBe(1);
  });

  it("block events: a stream for a block, 404 for none", async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${stack.url}/v1/blocks/502/events`, { signal: ctrl.signal });
    record("blockEvents", res.status);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^event: stage\ndata: \{"block":502,"stage":"auction_open"/);
    ctrl.abort();
    expect((await call("blockEvents", { params: { blockNumber: 9_999 } })).body.error.code).toBe(
      "BLOCK_NOT_FOUND",
    );
  });

  it("market events: a stream with a retry hint first, 400 for a bad filter", async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${stack.url}/v1/events?block=502`, { signal: ctrl.signal });
    record("marketEvents", res.status);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^retry: \d+\n\n/);
    ctrl.abort();
    expect((await call("marketEvents", { query: { prover: "0x1234" } })).body.error.code).toBe(
      "VALIDATION_FAILED",
    );
  });

  it("walked every route the relay serves, each with a success and an error", () => {
    const served = [...documented.values()].sort();
    expect(served).toEqual(Object.keys(operations).sort());
    for (const id of served) {
      const statuses = seen.get(id) ?? [];
      expect(
        statuses.some((s) => s < 300),
        `${id}: no success case`,
      ).toBe(true);
      if (!noClientError.has(id)) {
        expect(
          statuses.some((s) => s >= 400),
          `${id}: no error case`,
        ).toBe(true);
      }
    }
  });
});
