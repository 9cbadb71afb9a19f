// Comparing the escrow's balances with the ledger's view of them (COLLATERAL=chain). Once every
// indexed event is booked and every settlement is confirmed, they agree for every address:
//   free    = prover:<a>:available + prover:<a>:reserved + earnings:<a>
//   locked  = prover:<a>:locked
//   pending = prover:<a>:withdrawing
import { accounts, balances, type Prisma } from "@prover-boost/db";
import { escrowAbi } from "@prover-boost/escrow";
import type { Address, PublicClient } from "viem";

export interface EscrowBalances {
  free: bigint;
  locked: bigint;
  pending: bigint;
}

export interface AccountReconciliation {
  address: Address;
  chain: EscrowBalances;
  ledger: EscrowBalances;
  matches: boolean;
}

export async function ledgerEscrowBalances(
  prisma: Prisma,
  address: string,
): Promise<EscrowBalances> {
  const b = await balances(prisma, [
    accounts.available(address),
    accounts.reserved(address),
    accounts.earnings(address),
    accounts.locked(address),
    accounts.withdrawing(address),
  ]);
  return {
    free:
      b.get(accounts.available(address))! +
      b.get(accounts.reserved(address))! +
      b.get(accounts.earnings(address))!,
    locked: b.get(accounts.locked(address))!,
    pending: b.get(accounts.withdrawing(address))!,
  };
}

export async function chainEscrowBalances(
  client: PublicClient,
  escrow: Address,
  address: Address,
): Promise<EscrowBalances> {
  const [free, locked, pending] = await client.readContract({
    address: escrow,
    abi: escrowAbi,
    functionName: "balanceOf",
    args: [address],
  });
  return { free, locked, pending };
}

/** Each address's balances on the chain and in the ledger. */
export async function reconcileEscrow(
  prisma: Prisma,
  client: PublicClient,
  escrow: Address,
  addresses: Address[],
): Promise<AccountReconciliation[]> {
  const out: AccountReconciliation[] = [];
  for (const address of addresses) {
    const chain = await chainEscrowBalances(client, escrow, address);
    const ledger = await ledgerEscrowBalances(prisma, address);
    const matches =
      chain.free === ledger.free &&
      chain.locked === ledger.locked &&
      chain.pending === ledger.pending;
    out.push({ address, chain, ledger, matches });
  }
  return out;
}
