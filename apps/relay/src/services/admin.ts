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

/**
 * Credits `amount` wei to a prover's available collateral; refused past uint256 in all. With a
 * `reference` (the admin's own id for this credit) the deposit credits once: the same request
 * sent again is answered `replayed` and credits nothing, and the reference reused for another
 * prover or amount is refused (409 REFERENCE_REUSED).
 */
export async function creditDeposit(
  ctx: RelayContext,
  prover: `0x${string}`,
  amount: bigint,
  reference?: string,
) {
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
  const answer = { prover, amount: amount.toString(), status: "credited" as const };
  const replayed = await ctx.prisma.$transaction(async (tx) => {
    if (reference !== undefined) {
      // Two requests with the same reference wait for each other here, so the second reads the
      // first's row once the first commits (the row's key stops a third way through).
      await tx.$queryRaw`
        SELECT pg_advisory_xact_lock(hashtextextended(${`pb:deposit:${reference}`}, 0))::text AS locked`;
      const earlier = await tx.adminDeposit.findUnique({ where: { reference } });
      if (earlier) {
        if (earlier.prover !== prover || BigInt(earlier.amount.toFixed()) !== amount) {
          throw new DomainError(
            "REFERENCE_REUSED",
            `reference ${reference} already credited ${earlier.amount.toFixed()} wei to ${earlier.prover}`,
          );
        }
        return true;
      }
    }
    await tx.prover.upsert({
      where: { address: prover },
      create: { address: prover, createdAt: BigInt(now) },
      update: {},
    });
    const movementId = await applyMovement(tx, {
      kind: "deposit",
      legs: [
        { account: accounts.deposits, amount: -amount },
        { account: accounts.available(prover), amount },
      ],
      ref: reference ?? null,
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
    if (reference !== undefined) {
      await tx.adminDeposit.create({
        data: { reference, prover, amount: amount.toString(), movementId, createdAt: BigInt(now) },
      });
    }
    return false;
  });
  if (reference === undefined) return answer;
  return replayed ? { ...answer, reference, replayed: true } : { ...answer, reference };
}
