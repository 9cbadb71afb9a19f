// Admin calls (ledger mode): crediting collateral.
import { timingSafeEqual } from "node:crypto";
import { DomainError } from "@prover-boost/core";
import { accounts, applyMovement, collateralOf } from "@prover-boost/db";
import type { RelayContext } from "../context.ts";

const MAX_UINT256 = 2n ** 256n - 1n;

/** Admin calls carry `Authorization: Bearer <ADMIN_TOKEN>`; without an ADMIN_TOKEN they are off. */
export function requireAdmin(ctx: RelayContext, authorization: string | undefined) {
  const expected = ctx.settings.adminToken;
  if (!expected)
    throw new DomainError("SIGNER_NOT_ALLOWED", "admin calls are disabled (no ADMIN_TOKEN)");
  const m = /^Bearer (.+)$/.exec(authorization ?? "");
  const given = Buffer.from(m?.[1] ?? "");
  const want = Buffer.from(expected);
  if (given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new DomainError("UNAUTHORIZED", "send Authorization: Bearer <ADMIN_TOKEN>");
  }
}

/** Credits `amount` wei to a prover's available collateral; refused past uint256 in all. */
export async function creditDeposit(ctx: RelayContext, prover: `0x${string}`, amount: bigint) {
  const now = ctx.now();
  await ctx.prisma.$transaction(async (tx) => {
    await tx.prover.upsert({
      where: { address: prover },
      create: { address: prover, createdAt: BigInt(now) },
      update: {},
    });
    await applyMovement(tx, {
      kind: "deposit",
      legs: [
        { account: accounts.deposits, amount: -amount },
        { account: accounts.available(prover), amount },
      ],
      nowMs: now,
    });
    const after = await collateralOf(tx, prover);
    if (after.available + after.reserved + after.locked > MAX_UINT256) {
      throw new DomainError("AMOUNT_TOO_LARGE", "the prover's collateral would exceed uint256");
    }
  });
  return { prover, amount: amount.toString(), status: "credited" as const };
}
