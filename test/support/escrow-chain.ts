// A private anvil per test file with ProverBoostEscrow deployed on it, the roles as anvil's
// development accounts, and functions to send transactions, read balances and assert reverts.
import {
  type AnvilHandle,
  anvilAccount,
  deployEscrow,
  escrowAbi,
  startAnvil,
} from "@prover-boost/escrow";
import {
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createTestClient,
  createWalletClient,
  type Hash,
  http,
  type PublicClient,
  publicActions,
} from "viem";
import { foundry } from "viem/chains";

export const roles = {
  owner: anvilAccount(0),
  settler: anvilAccount(1),
  sequencer: anvilAccount(2),
  proverA: anvilAccount(3),
  proverB: anvilAccount(4),
  outsider: anvilAccount(5),
  sequencer2: anvilAccount(6),
};
export type Role = keyof typeof roles;

export const ether = (n: number | bigint) => BigInt(n) * 10n ** 18n;

export interface EscrowChain {
  anvil: AnvilHandle;
  publicClient: PublicClient;
  testClient: ReturnType<typeof makeTestClient>;
  wallet(role: Role): ReturnType<typeof makeWallet>;
  stop(): Promise<void>;
}

function makeWallet(url: string, role: Role) {
  return createWalletClient({
    account: roles[role],
    chain: foundry,
    transport: http(url),
    pollingInterval: 50,
  }).extend(publicActions);
}

function makeTestClient(url: string) {
  return createTestClient({ mode: "anvil", chain: foundry, transport: http(url) });
}

export async function startEscrowChain(): Promise<EscrowChain> {
  const anvil = await startAnvil();
  const publicClient = createPublicClient({
    chain: foundry,
    transport: http(anvil.url),
    pollingInterval: 50,
  });
  const wallets = new Map<Role, ReturnType<typeof makeWallet>>();
  const testClient = makeTestClient(anvil.url);
  // anvil credits priority fees to address(0) by default; move them elsewhere so address(0)'s
  // balance counts only what the escrow burns.
  await testClient.setCoinbase({ address: "0x000000000000000000000000000000000000c0de" });
  return {
    anvil,
    publicClient,
    testClient,
    wallet(role) {
      let w = wallets.get(role);
      if (!w) {
        w = makeWallet(anvil.url, role);
        wallets.set(role, w);
      }
      return w;
    },
    stop: () => anvil.stop(),
  };
}

export interface EscrowParams {
  withdrawalDelay?: bigint;
  slashToSequencerBps?: bigint;
}

/** Deploys a fresh escrow owned by `owner` with `settler` as settler; returns its address. */
export async function deployFresh(chain: EscrowChain, params: EscrowParams = {}): Promise<Address> {
  const d = await deployEscrow(chain.wallet("owner"), chain.publicClient, {
    settler: roles.settler.address,
    withdrawalDelay: params.withdrawalDelay ?? 3600n,
    slashToSequencerBps: params.slashToSequencerBps ?? 2500n,
    sequencers: [roles.sequencer.address, roles.sequencer2.address],
  });
  return d.address;
}

type EscrowWrite = Parameters<ReturnType<typeof makeWallet>["writeContract"]>[0];
export type WriteName = Extract<EscrowWrite["functionName"], string>;

/** Sends an escrow transaction from `role`, waits for it and requires success. */
export async function send(
  chain: EscrowChain,
  escrow: Address,
  role: Role,
  functionName: WriteName,
  args: readonly unknown[] = [],
  value?: bigint,
): Promise<Hash> {
  const w = chain.wallet(role);
  const hash = await w.writeContract({
    address: escrow,
    abi: escrowAbi,
    functionName,
    args,
    value,
  } as unknown as EscrowWrite);
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${functionName} reverted in ${hash}`);
  return hash;
}

/** The custom error name an escrow call reverts with, or undefined when it would succeed. */
export async function revertOf(
  chain: EscrowChain,
  escrow: Address,
  role: Role,
  functionName: WriteName,
  args: readonly unknown[] = [],
  value?: bigint,
): Promise<string | undefined> {
  try {
    await chain.publicClient.simulateContract({
      account: roles[role],
      address: escrow,
      abi: escrowAbi,
      functionName,
      args,
      value,
    } as unknown as Parameters<PublicClient["simulateContract"]>[0]);
    return undefined;
  } catch (err) {
    if (err instanceof BaseError) {
      const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
      if (reverted instanceof ContractFunctionRevertedError) {
        return reverted.data?.errorName ?? reverted.signature ?? "revert";
      }
    }
    throw err;
  }
}

export interface AccountBalance {
  free: bigint;
  locked: bigint;
  pending: bigint;
  withdrawableAt: bigint;
}

export async function balanceOf(
  chain: EscrowChain,
  escrow: Address,
  who: Address,
): Promise<AccountBalance> {
  const [free, locked, pending, withdrawableAt] = await chain.publicClient.readContract({
    address: escrow,
    abi: escrowAbi,
    functionName: "balanceOf",
    args: [who],
  });
  return { free, locked, pending, withdrawableAt };
}

export async function blockInfo(chain: EscrowChain, escrow: Address, blockNumber: bigint) {
  const [state, sequencer, reward, prover, bond] = await chain.publicClient.readContract({
    address: escrow,
    abi: escrowAbi,
    functionName: "blockInfo",
    args: [blockNumber],
  });
  return { state, sequencer, reward, prover, bond };
}

/** Everything observable about the escrow for the given accounts and blocks. */
export async function snapshot(
  chain: EscrowChain,
  escrow: Address,
  accounts: readonly Address[],
  blocks: readonly bigint[],
) {
  return {
    eth: await chain.publicClient.getBalance({ address: escrow }),
    accounts: await Promise.all(accounts.map((a) => balanceOf(chain, escrow, a))),
    blocks: await Promise.all(blocks.map((b) => blockInfo(chain, escrow, b))),
    unsettled: await chain.publicClient.readContract({
      address: escrow,
      abi: escrowAbi,
      functionName: "totalUnsettledRewards",
    }),
    burned: await chain.publicClient.readContract({
      address: escrow,
      abi: escrowAbi,
      functionName: "totalBurned",
    }),
  };
}
