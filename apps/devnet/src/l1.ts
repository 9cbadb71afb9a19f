// The devnet's L1 (`--chain`): a private anvil, the escrow deployed on it, the settler, the
// sequencer and the operators funded with ether, and the calls they make on the escrow (operators
// deposit their collateral, the sequencer funds each block's reward before opening its auction).
// At the end, every address's escrow balance is compared with the ledger's.
import { type AccountReconciliation, reconcileEscrow } from "@prover-boost/chain";
import type { Prisma } from "@prover-boost/db";
import {
  ANVIL_CHAIN_ID,
  type AnvilHandle,
  anvilAccount,
  deployEscrow,
  escrowAbi,
  l1Chain,
  startAnvil,
} from "@prover-boost/escrow";
import {
  type Address,
  createPublicClient,
  createWalletClient,
  type Hash,
  http,
  type LocalAccount,
  type PublicClient,
  parseEther,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { derive } from "./seed.ts";

export interface DevnetL1 {
  url: string;
  escrow: Address;
  /** The chain-mode environment of the relay and the aggregator. */
  env: Record<string, string>;
  client: PublicClient;
  fund(to: Address, eth: string): Promise<void>;
  deposit(who: LocalAccount, amount: bigint): Promise<void>;
  fundReward(who: LocalAccount, blockNumber: number, amount: bigint): Promise<void>;
  reconcile(prisma: Prisma, addresses: Address[]): Promise<AccountReconciliation[]>;
  stop(): Promise<void>;
}

export async function startDevnetL1(opts: {
  seed: string;
  /** The simulated sequencer, registered on the escrow so it may fund rewards. */
  sequencer: Address;
  slashToSequencerBps: number;
  confirmations: string | undefined;
}): Promise<DevnetL1> {
  // anvil mines a block per transaction; confirmations beyond the first need blocks that keep
  // coming, so then it also mines one every second.
  const confirmations = Number(opts.confirmations ?? "1");
  // Out of the terminal's Ctrl-C: the devnet sends and reconciles its last settlements on it
  // before it stops it.
  const anvil: AnvilHandle = await startAnvil({
    ownGroup: true,
    ...(confirmations > 1 ? { blockTime: 1 } : {}),
  });
  try {
    const chain = l1Chain(ANVIL_CHAIN_ID, anvil.url, "anvil");
    const transport = http(anvil.url, { retryCount: 0 });
    const client = createPublicClient({ chain, transport, pollingInterval: 50 });
    const walletOf = (account: LocalAccount | ReturnType<typeof anvilAccount>) =>
      createWalletClient({ account, chain, transport });
    const bank = walletOf(anvilAccount(0));
    const settlerKey = derive(opts.seed, "settler-key");
    const settler = privateKeyToAccount(settlerKey);
    const { address: escrow } = await deployEscrow(bank, client, {
      settler: settler.address,
      withdrawalDelay: 60n,
      slashToSequencerBps: BigInt(opts.slashToSequencerBps),
      sequencers: [opts.sequencer],
    });
    const wait = async (hash: Hash) => {
      const r = await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
      if (r.status !== "success") throw new Error(`L1 transaction ${hash} reverted`);
    };
    const l1: DevnetL1 = {
      url: anvil.url,
      escrow,
      client,
      env: {
        COLLATERAL: "chain",
        L1_RPC_URL: anvil.url,
        ESCROW_ADDRESS: escrow,
        SETTLER_KEY: settlerKey,
        L1_CONFIRMATIONS: opts.confirmations ?? "1",
        L1_POLL_MS: "200",
      },
      async fund(to, eth) {
        await wait(await bank.sendTransaction({ to, value: parseEther(eth) }));
      },
      async deposit(who, amount) {
        await wait(
          await walletOf(who).writeContract({
            address: escrow,
            abi: escrowAbi,
            functionName: "deposit",
            value: amount,
          }),
        );
      },
      async fundReward(who, blockNumber, amount) {
        await wait(
          await walletOf(who).writeContract({
            address: escrow,
            abi: escrowAbi,
            functionName: "fundReward",
            args: [BigInt(blockNumber)],
            value: amount,
          }),
        );
      },
      reconcile: (prisma, addresses) => reconcileEscrow(prisma, client, escrow, addresses),
      stop: () => anvil.stop(),
    };
    await l1.fund(settler.address, "100");
    return l1;
  } catch (err) {
    await anvil.stop();
    throw err;
  }
}
