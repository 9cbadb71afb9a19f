// Admin calls (ledger mode): crediting collateral. In chain mode only the escrow's indexed
// Deposited events credit collateral, and the deposit endpoint answers 409 COLLATERAL_ON_CHAIN.
import { timingSafeEqual } from "node:crypto";
import { DomainError, LEDGER_SOURCE_CAP_WEI, MAX_AMOUNT_WEI } from "@prover-boost/core";
import { accounts, applyMovement, balanceOf, collateralOf } from "@prover-boost/db";
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
  if (ctx.settings.collateral === "chain") {
    throw new DomainError(
      "COLLATERAL_ON_CHAIN",
      "collateral is held by the escrow contract (COLLATERAL=chain): deposit on the L1",
    );
  }
  if (amount > MAX_AMOUNT_WEI) {
    throw new DomainError("AMOUNT_TOO_LARGE", `a deposit may be at most ${MAX_AMOUNT_WEI} wei`);
  }
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
    // The deposits source's row is locked by the movement above, so this check and the
    // deposit commit together: all deposits ever made stay within the ledger's bound.
    if (-(await balanceOf(tx, accounts.deposits)) > LEDGER_SOURCE_CAP_WEI) {
      throw new DomainError("AMOUNT_TOO_LARGE", "deposits in total would pass the ledger's bound");
    }
    const after = await collateralOf(tx, prover);
    if (after.available + after.reserved + after.locked > MAX_UINT256) {
      throw new DomainError("AMOUNT_TOO_LARGE", "the prover's collateral would exceed uint256");
    }
  });
  return { prover, amount: amount.toString(), status: "credited" as const };
}
