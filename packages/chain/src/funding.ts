// COLLATERAL=chain: whether a block's reward sits on the escrow, as the index has booked it. An
// auction may only be opened on a block its own sequencer funded with at least the auction's
// reward: the escrow refuses to lock a bond on an unfunded block, and pays a slash share to the
// block's funder, so the ledger and the escrow must agree on both before any bid is taken.
import type { Prisma } from "@prover-boost/db";
import { type Address, getAddress } from "viem";

export interface RewardFunding {
  /** The address that funded the block (the escrow's `blocks[n].sequencer`). */
  sequencer: Address;
  amount: bigint;
  /** Whether the escrow has closed the block already (settled, or its reward refunded). */
  closed: boolean;
}

/**
 * The funding of `blockNumber` on `escrow` among the indexed logs still on the chain (booked
 * once confirmed), or null when no RewardFunded of that block is indexed.
 */
export async function indexedRewardFunding(
  prisma: Prisma,
  escrow: Address,
  blockNumber: number,
): Promise<RewardFunding | null> {
  const logs = await prisma.chainLog.findMany({
    where: {
      escrow: escrow.toLowerCase(),
      removed: false,
      event: { in: ["RewardFunded", "RewardRefunded", "BlockSettled"] },
      // Indexed arguments are stored with integers as decimal strings.
      args: { path: ["blockNumber"], equals: String(blockNumber) },
    },
    orderBy: [{ blockNumber: "asc" }, { logIndex: "asc" }],
    select: { event: true, args: true },
  });
  const funded = logs.find((l) => l.event === "RewardFunded");
  if (!funded) return null;
  const args = funded.args as { sequencer: string; amount: string };
  return {
    sequencer: getAddress(args.sequencer),
    amount: BigInt(args.amount),
    closed: logs.some((l) => l.event !== "RewardFunded"),
  };
}
