// A result is checked against its job as the relay read it for the lease (no second read), on
// real Redis and Postgres. That read is used only while the fetcher that took the job is still
// the block's open one: once the relay closed the block's handles (it does so for blocks it sees
// as inactive) and opened new ones, the result is read afresh, and an honest result is credited
// either way. A bad proof is refused against the kept read just the same.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, proveUntilPaid, relayError, signIn } from "./support/blocks.ts";

describe("a result checked against its lease's read", () => {
  const op = account(0x2b);
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ env: { LEASE_MS: "5000", RATE_LIMIT_PER_IP: "0" } });
    await stack.admin.deposit(op.address, 10n ** 18n);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("is credited with the read kept, and after the block's handles were closed and reopened", async () => {
    const blockNumber = 1;
    await openBlock(stack, blockNumber, { txCount: 4, winner: op });
    const w = await signIn(stack, op, "w1", { capacity: 2 });
    const fabric = stack.relay.ctx.fabric;

    const kept = (await w.client.lease(1000))!;
    expect(await w.client.submitResult(kept.id, proofOf(kept))).toEqual({ status: "accepted" });

    // Leased through one fetcher; the block's handles closed and opened again before the result.
    const reopened = (await w.client.lease(1000))!;
    const before = fabric.openFetcherOf(blockNumber, "base");
    expect(before).toBeDefined();
    await fabric.closeFetchersExcept(new Set());
    expect(fabric.openFetcherOf(blockNumber, "base")).toBeUndefined();
    const other = (await w.client.lease(1000))!;
    expect(fabric.openFetcherOf(blockNumber, "base")).not.toBe(before);
    expect(await w.client.submitResult(reopened.id, proofOf(reopened))).toEqual({
      status: "accepted",
    });

    // The kept read still checks the proof: a wrong one is refused as invalid, not credited.
    const bad = await relayError(w.client.submitResult(other.id, `0x${"00".repeat(32)}`));
    expect(bad).toMatchObject({ status: 422, code: "INVALID_PROOF" });

    // The rest of the tree (parents read their children's proofs at their leases) pays out.
    const paid = await proveUntilPaid(stack, blockNumber, [w.client]);
    expect(paid.stage).toBe("paid");
    expect(await stack.db.prisma.penalty.count({ where: { kind: "withholding" } })).toBe(0);
  });
});
