// A real local L1 for chain-mode tests: anvil from the registry package, the escrow deployed
// with viem, and the calls provers and sequencers make on it (deposit, ask collateral back, fund a block's reward).
import { EscrowIndexer, type IndexerOptions, Settler } from "@prover-boost/chain";
import {
  ANVIL_CHAIN_ID,
  type AnvilHandle,
  anvilAccount,
  l1Chain as chainAt,
  deployEscrow,
  escrowAbi,
  startAnvil,
} from "@prover-boost/escrow";
import {
  type Address,
  createPublicClient,
  createWalletClient,
  custom,
  type Hash,
  http,
  type LocalAccount,
  type PublicClient,
  parseEther,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { eventually, type Stack, sequencer } from "../harness.ts";

/** The settler key the chain-mode tests give the aggregator (never for real money). */
export const SETTLER_KEY = `0x${"5a".repeat(32)}` as const;
export const settlerAccount = privateKeyToAccount(SETTLER_KEY);

export interface L1 {
  anvil: AnvilHandle;
  url: string;
  client: PublicClient;
  escrow: Address;
  /** Chain-mode settings for a relay and aggregator on this L1 and escrow. */
  env: Record<string, string>;
  /** Sends `eth` ether from a funded anvil account to `to`. */
  fund(to: Address, eth?: string): Promise<void>;
  deposit(who: LocalAccount, amount: bigint): Promise<{ hash: Hash; block: bigint }>;
  /** `who` asks `amount` of its free collateral back on the escrow (mined). */
  requestWithdrawal(who: LocalAccount, amount: bigint): Promise<void>;
  /** `who` takes its whole pending withdrawal back into its free collateral (mined). */
  cancelWithdrawal(who: LocalAccount): Promise<void>;
  fundReward(who: LocalAccount, blockNumber: number, amount: bigint): Promise<void>;
  /** Mines `n` empty blocks. */
  mine(n?: number): Promise<void>;
  rpc(method: string, params?: unknown[]): Promise<unknown>;
  stop(): Promise<void>;
}

/** The viem chain of a test anvil at `url`. */
export const l1Chain = (url: string) => chainAt(ANVIL_CHAIN_ID, url, "anvil");

/** A wallet client that signs as `account` on the test L1. */
export const walletOn = (l1: { url: string }, account: LocalAccount) =>
  createWalletClient({ account, chain: l1Chain(l1.url), transport: http(l1.url) });

/**
 * An escrow index of the test's own on `stack`'s database (sharing the relay's cursor for the
 * escrow), polled by hand: one confirmation, the chain from block 0, 60 s before it is stale.
 */
export function indexerOn(
  stack: Stack,
  l1: { client: PublicClient; escrow: Address },
  log: IndexerOptions["log"],
): EscrowIndexer {
  return new EscrowIndexer({
    prisma: stack.db.prisma,
    client: l1.client,
    escrow: l1.escrow,
    confirmations: 1,
    logRange: 1000,
    startBlock: 0n,
    maxReorgDepth: 64,
    staleMs: 60_000,
    pollMs: 100,
    log,
  });
}

/**
 * A settler of the test's own on `stack`'s database and the test L1, signing with the settler
 * key and retrying at once, with `opts` over that.
 */
export function settlerOn(
  stack: Stack,
  l1: { client: PublicClient; escrow: Address; url: string },
  opts: Partial<ConstructorParameters<typeof Settler>[0]> = {},
): Settler {
  return new Settler({
    prisma: stack.db.prisma,
    client: l1.client,
    wallet: walletOn(l1, settlerAccount),
    escrow: l1.escrow,
    retry: { baseMs: 1, maxMs: 1 },
    ...opts,
  });
}

/**
 * A public client of the test L1 behind an RPC provider of the test's own (one that caps log
 * queries, or whose node lags): `answer` sees each request first, with the node's own transport,
 * and returns what the provider answers instead, or undefined to pass it on; it may throw.
 */
export function clientThrough(
  l1: { url: string },
  answer: (
    req: { method: string; params: unknown },
    node: { request(req: { method: string; params?: unknown }): Promise<unknown> },
  ) => Promise<unknown>,
): PublicClient {
  const node = http(l1.url, { retryCount: 0 })({ chain: l1Chain(l1.url) });
  const send = (req: { method: string; params?: unknown }) =>
    node.request(req as Parameters<typeof node.request>[0]);
  return createPublicClient({
    chain: l1Chain(l1.url),
    transport: custom({
      async request({ method, params }) {
        const own = await answer({ method, params }, { request: send });
        return own === undefined ? send({ method, params }) : own;
      },
    }),
  }) as PublicClient;
}

/**
 * Starts anvil (on `port` when given) and deploys the escrow with the test settler and the test
 * sequencer registered.
 */
export async function startL1(opts: { port?: number; slashToSequencerBps?: bigint } = {}) {
  const anvil = await startAnvil(opts.port !== undefined ? { port: opts.port } : {});
  const chain = l1Chain(anvil.url);
  const transport = http(anvil.url, { retryCount: 0 });
  const client = createPublicClient({ chain, transport, pollingInterval: 50 });
  const walletOf = (account: LocalAccount | ReturnType<typeof anvilAccount>) =>
    createWalletClient({ account, chain, transport });
  const bank = walletOf(anvilAccount(0));
  const { address: escrow } = await deployEscrow(bank, client, {
    settler: settlerAccount.address,
    withdrawalDelay: 0n,
    slashToSequencerBps: opts.slashToSequencerBps ?? 5000n,
    sequencers: [sequencer.address],
  });
  const wait = async (hash: Hash) => {
    const r = await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (r.status !== "success") throw new Error(`transaction ${hash} reverted`);
    return r;
  };
  const l1: L1 = {
    anvil,
    url: anvil.url,
    client,
    escrow,
    env: {
      COLLATERAL: "chain",
      L1_RPC_URL: anvil.url,
      ESCROW_ADDRESS: escrow,
      SETTLER_KEY,
      L1_POLL_MS: "100",
      SETTLER_RETRY_BASE_MS: "100",
      SETTLER_RETRY_MAX_MS: "1000",
    },
    async fund(to, eth = "10") {
      await wait(await bank.sendTransaction({ to, value: parseEther(eth) }));
    },
    async deposit(who, amount) {
      const hash = await walletOf(who).writeContract({
        address: escrow,
        abi: escrowAbi,
        functionName: "deposit",
        value: amount,
      });
      const r = await wait(hash);
      return { hash, block: r.blockNumber };
    },
    async requestWithdrawal(who, amount) {
      const hash = await walletOf(who).writeContract({
        address: escrow,
        abi: escrowAbi,
        functionName: "requestWithdrawal",
        args: [amount],
      });
      await wait(hash).catch(async (err: Error) => {
        // Which balance it met: [free, locked, pending] on the escrow now.
        const now = await client.readContract({
          address: escrow,
          abi: escrowAbi,
          functionName: "balanceOf",
          args: [who.address],
        });
        throw new Error(`${err.message} (asked ${amount}; escrow balances now ${now})`);
      });
    },
    async cancelWithdrawal(who) {
      await wait(
        await walletOf(who).writeContract({
          address: escrow,
          abi: escrowAbi,
          functionName: "cancelWithdrawal",
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
    async mine(n = 1) {
      for (let i = 0; i < n; i++) await client.request({ method: "evm_mine" } as never);
    },
    rpc: (method, params = []) => client.request({ method, params } as never),
    stop: () => anvil.stop(),
  };
  await l1.fund(settlerAccount.address, "100");
  return l1;
}

/**
 * Funds `blockNumber`'s reward on the escrow as `who` and waits until the relay's index has
 * booked it (an auction is refused before: 422 REWARD_NOT_FUNDED).
 */
export async function fundIndexedReward(
  stack: Stack,
  l1: L1,
  blockNumber: number,
  amount: bigint,
  who: LocalAccount = sequencer,
) {
  await l1.fundReward(who, blockNumber, amount);
  // Beyond one confirmation, anvil (a block per transaction) needs blocks mined on top.
  const deep = Number(stack.relay.env.L1_CONFIRMATIONS) > 1;
  const index = stack.relay.ctx.escrowIndex!;
  await eventually(async () => {
    // Polled here too: a test may have stopped the relay's own polling.
    await index.poll();
    if ((await index.rewardFunding(blockNumber)) !== null) return true;
    if (deep) await l1.mine(1);
    return false;
  });
}
