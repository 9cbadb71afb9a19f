// An admin deposit (ledger mode) is money in. A retry of one whose answer was lost (a timeout, a
// reset connection) must not credit twice: a deposit sent with a `reference`, the admin's own id
// for that credit, credits once however often it is sent, at once or one after another, and the
// reference cannot be spent again on another prover or amount. A refused deposit spends nothing,
// not even its reference. On Postgres and on the embedded PGlite.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account, snapshot } from "./fixtures.ts";
import { ADMIN_TOKEN, type Backend, type Stack, startStack } from "./harness.ts";

const backends: Backend[] = ["postgres", "pglite"];

describe.each(backends)("admin deposits with a reference (%s)", (backend) => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ backend, aggregator: false, env: { RATE_LIMIT_PER_IP: "0" } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const post = async (body: Record<string, unknown>) => {
    const res = await fetch(`${stack.url}/v1/admin/deposits`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const available = async (prover: string) =>
    BigInt((await stack.client.getProver(prover)).collateral.available);
  const deposits = (reference: string) =>
    stack.db.prisma.ledgerEntry.count({ where: { kind: "deposit", ref: reference } });

  it("credits once when the same deposit is sent again", async () => {
    const prover = account(0xd1).address;
    const body = { prover, amount: "1000", reference: "transfer-1" };
    expect(await post(body)).toEqual({
      status: 201,
      body: { prover, amount: "1000", status: "credited", reference: "transfer-1" },
    });
    expect(await post(body)).toEqual({
      status: 200,
      body: { prover, amount: "1000", status: "credited", reference: "transfer-1", replayed: true },
    });
    expect(await available(prover)).toBe(1000n);
    // One movement: its two legs.
    expect(await deposits("transfer-1")).toBe(2);
  });

  it("credits once when the same deposit is sent many times at once", async () => {
    const prover = account(0xd2).address;
    const body = { prover, amount: "777", reference: "transfer-burst" };
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(body)));
    expect(answers.map((a) => a.status).sort()).toEqual([...Array(11).fill(200), 201]);
    expect(answers.every((a) => a.body.status === "credited")).toBe(true);
    expect(await available(prover)).toBe(777n);
    expect(await deposits("transfer-burst")).toBe(2);
  });

  it("refuses the reference for another amount or prover, changing nothing", async () => {
    const prover = account(0xd3).address;
    const other = account(0xd4).address;
    expect((await post({ prover, amount: "500", reference: "transfer-3" })).status).toBe(201);
    const before = await snapshot(stack);
    for (const body of [
      { prover, amount: "501", reference: "transfer-3" },
      { prover: other, amount: "500", reference: "transfer-3" },
    ]) {
      const res = await post(body);
      expect(res.status).toBe(409);
      expect((res.body.error as { code: string }).code).toBe("REFERENCE_REUSED");
    }
    expect(await snapshot(stack)).toEqual(before);
    expect(await available(prover)).toBe(500n);
    expect(await available(other)).toBe(0n);
  });

  it("a refused deposit spends nothing, its reference included", async () => {
    const prover = account(0xd5).address;
    const tooLarge = { prover, amount: (2n ** 256n - 1n).toString(), reference: "transfer-5" };
    const refused = await post(tooLarge);
    expect(refused.status).toBe(422);
    expect((refused.body.error as { code: string }).code).toBe("AMOUNT_TOO_LARGE");
    expect(await stack.db.prisma.adminDeposit.count({ where: { reference: "transfer-5" } })).toBe(
      0,
    );
    expect((await post({ prover, amount: "5", reference: "transfer-5" })).status).toBe(201);
    expect(await available(prover)).toBe(5n);
  });

  it("refuses a malformed reference as bad input, changing nothing", async () => {
    const prover = account(0xd6).address;
    const before = await snapshot(stack);
    for (const reference of ["", "has space", "x".repeat(129), "naïve", 7]) {
      const res = await post({ prover, amount: "1", reference });
      expect(res.status).toBe(400);
      expect((res.body.error as { code: string }).code).toBe("VALIDATION_FAILED");
    }
    expect(await snapshot(stack)).toEqual(before);
  });

  it("without a reference, every request credits (the SDK's deposit passes one through)", async () => {
    const prover = account(0xd7).address;
    await stack.admin.deposit(prover, 10n);
    await stack.admin.deposit(prover, 10n);
    expect(await available(prover)).toBe(20n);
    const first = await stack.admin.deposit(prover, 3n, { reference: "transfer-7" });
    const again = await stack.admin.deposit(prover, 3n, { reference: "transfer-7" });
    expect(first).not.toHaveProperty("replayed");
    expect(again).toMatchObject({ replayed: true });
    expect(await available(prover)).toBe(23n);
  });
});
