// The settler (COLLATERAL=chain, run by the aggregator): sends the escrow the transactions the
// aggregator's decisions owe it, with the settler key.
//
// The aggregator writes each one as a Settlement row in the same Postgres transaction as the
// ledger movement it mirrors (lock at close, slash at a missed deadline, settle at payout, which
// also releases a bond still locked; and the relay's withholding and invalid-proof penalties,
// written by the ledger's chargePenalty, key `penalty:<id>`; and the escrow index's refunds of
// rewards funded for blocks the market cannot represent, key `refund:<block>`, filed under block
// 0; and the aggregator's refund of a block nobody proved in open proving, `expired`, same key,
// filed under its block), so a decision and its transaction are never one without the other. The settler sends them one at a time in id order (a block's lock before its slash or
// settlement) from one key, so nonces are assigned in order:
//
// - Before sending, it looks on the chain for the action's event (BondLocked, BondSlashed,
//   BlockSettled, RewardRefunded of that block; Penalized with the penalty's ref). If it is there, an earlier process sent it and stopped before
//   recording the receipt: the row is completed from the chain, nothing is sent again.
// - It simulates the call first; a revert (the contract's guard: settled already, no bond, not
//   funded, ...) is recorded with the revert's name, logged with code SETTLEMENT_REVERTED, and
//   never retried. A receipt with a failed status is recorded the same way (unless the escrow's
//   settler was another key in its block: rotated while it was on its way; owed, as below).
//   Except when the
//   escrow index changed what is owed meanwhile: a lock whose amount it shrank since the call was
//   built (a withdrawal the escrow took first: why the lock reverted) is sent again with the
//   shrunk amount (cancelled when nothing is left), and a slash that found no bond because its
//   block's lock is owed again goes again behind it (`reverted`). The index, for its part, owes
//   again a lock that had reverted when it shrinks its bond (movements.ts, shrinkOwedLock).
//   Both take the lock's row first, so one of the two always sees the other's change; a reverted
//   lock locked nothing and is owed again only once it has reverted, so nothing is locked twice.
// - The transaction is signed locally and its hash and nonce are recorded (status `sent`) before
//   it is broadcast, so a crash after broadcasting leaves a hash to look up.
// - Each pass first checks the L1 is the one the escrow index was built on (chain id, genesis)
//   with the escrow's code on it: an L1 restarted empty would revert every call, each recorded
//   as final. Until it is, nothing is sent or recorded, and the pass backs off as below.
// - Transient failures (the L1 unreachable, a timeout, a nonce taken) are retried with
//   exponential backoff, SETTLER_RETRY_BASE_MS doubling up to SETTLER_RETRY_MAX_MS; later rows
//   wait for the one in front.
// - A lock whose bond a withdrawal the escrow took first left at nothing, and that block's slash,
//   are `cancelled` by the escrow index before they are sent (movements.ts), and never sent (a
//   slash already sent, owed again after a reorg, is cancelled once it reverts for want of that
//   bond); a row is marked `sent` only if it is still what its transaction was built from.
// - A transaction the L1 keeps pending (its fee fell below what blocks now ask) is replaced after
//   SETTLER_FEE_BUMP_AFTER_MS by the same call at the same nonce with fees raised at least 12.5%
//   (what nodes ask of a replacement) and to the node's current estimate; recorded once the
//   node took it. A row whose transaction the node no longer knows is sent again only when no
//   transaction of the settler's is pending at the row's nonce (a replacement broadcast and not
//   recorded, by a process that died): only one transaction per nonce can ever land.
// And the contract settles a block at most once, whatever happens here.
import { STAGE } from "@prover-boost/core";
import type { Prisma, Tx } from "@prover-boost/db";
import { escrowAbi, l1Chain } from "@prover-boost/escrow";
import {
  type Account,
  type Address,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  decodeFunctionData,
  encodeFunctionData,
  type Hash,
  keccak256,
  type PublicClient,
  parseEventLogs,
  type Transaction,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from "viem";
import { inMarketRange } from "./block-range.ts";
import { shortError } from "./indexer.ts";
import { bondWithdrawn } from "./movements.ts";
import { penaltyRef } from "./penalty-ref.ts";

export { penaltyRef };

export type SettlementAction =
  | { kind: "lock"; blockNumber: number; prover: string; amount: bigint }
  | {
      kind: "slash";
      blockNumber: number;
      /** The split the ledger's slash used (the escrow's own), kept for a later partial undo. */
      slashToSequencerBps?: number;
    }
  | { kind: "settle"; blockNumber: number; recipients: string[]; amounts: bigint[] }
  /** The reward of a block that expired in open proving, back to its sequencer. */
  | { kind: "refund"; blockNumber: number };

/** The escrow refuses this key (Unauthorized): its owner rotated the settler, or it is not it. */
class SettlerNotAuthorized extends Error {
  constructor(revert: string) {
    super(
      `${revert}: this key is not the escrow's settler (was it rotated?); retrying with backoff`,
    );
    this.name = "SettlerNotAuthorized";
  }
}

/** A settlement transaction's gas limit, in percent of the node's estimate. */
export const GAS_MARGIN_PERCENT = 150n;

/** Records a settlement owed to the escrow, in the caller's transaction (once per kind and block). */
export async function enqueueSettlement(
  tx: Tx,
  action: SettlementAction,
  nowMs: number,
): Promise<void> {
  const { kind, blockNumber, ...rest } = action;
  // A refund names its block in its args, as the index's refunds (filed under block 0) do.
  const args = JSON.parse(
    JSON.stringify(kind === "refund" ? { blockNumber: String(blockNumber) } : rest, (_k, v) =>
      typeof v === "bigint" ? v.toString() : v,
    ),
  );
  await tx.settlement.upsert({
    where: { key: `${kind}:${blockNumber}` },
    create: {
      key: `${kind}:${blockNumber}`,
      kind,
      blockNumber,
      args,
      nextAttemptAt: BigInt(nowMs),
      createdAt: BigInt(nowMs),
      updatedAt: BigInt(nowMs),
    },
    update: {},
  });
}

type Outcome = "done" | "mined" | "waiting";

const eventOf = {
  lock: "BondLocked",
  slash: "BondSlashed",
  settle: "BlockSettled",
  penalty: "Penalized",
  refund: "RewardRefunded",
} as const;

type Row = Awaited<ReturnType<Prisma["settlement"]["findFirstOrThrow"]>>;

export interface SettlerOptions {
  prisma: Prisma;
  client: PublicClient;
  wallet: WalletClient<Transport, Chain | undefined, Account>;
  escrow: Address;
  retry: { baseMs: number; maxMs: number };
  /** Confirmations a settlement's block needs before it is recorded as confirmed (default 1). */
  confirmations?: number;
  /** How long to wait for a receipt before looking again on the next pass. */
  receiptTimeoutMs?: number;
  /**
   * Where a settlement's event is looked for on the chain: most blocks asked for in one
   * eth_getLogs (RPC providers cap the range; default 1000), the escrow's deployment block (for
   * rows taken before searchFrom was kept; default 0), and how far below the head a row's
   * transaction may land after a reorg (default 64).
   */
  logRange?: number;
  startBlock?: bigint;
  maxReorgDepth?: number;
  /** A sent transaction still pending this long (ms) is replaced with higher fees (default 180 s). */
  feeBumpAfterMs?: number;
  /**
   * The most a replacement pays per gas (its maxFeePerGas and tip, or gasPrice), wei; none when
   * undefined. A transaction stuck for a reason fees do not cure would otherwise be bumped 12.5%
   * at every SETTLER_FEE_BUMP_AFTER_MS for as long as it stays, its fee growing without end.
   */
  maxFeePerGas?: bigint;
  now?: () => number;
  log?: {
    info(o: object, m?: string): void;
    warn(o: object, m?: string): void;
    error(o: object, m?: string): void;
  };
  /** Test hook: called after a transaction is recorded as sent, before it is broadcast. */
  beforeBroadcast?: (row: { key: string; txHash: string }) => Promise<void>;
}

export class Settler {
  /** The last transaction a fee bump was held back for by the cap (said once: bumpFee). */
  private cappedTx: string | null = null;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;
  private chain: Chain | null = null;

  constructor(private readonly opts: SettlerOptions) {
    this.now = opts.now ?? Date.now;
  }

  get client(): PublicClient {
    return this.opts.client;
  }

  /** The settler key's address. */
  get address(): Address {
    return this.opts.wallet.account.address;
  }

  start(intervalMs: number): void {
    const loop = async () => {
      if (this.stopped) return;
      this.running = this.run().catch((err) =>
        this.opts.log?.error({ err }, "settler pass failed"),
      );
      await this.running;
      this.running = null;
      if (!this.stopped) this.timer = setTimeout(loop, intervalMs);
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One pass over the open settlements, in id order. Returns how many it completed. */
  async run(): Promise<number> {
    const rows = await this.opts.prisma.settlement.findMany({
      where: { status: { in: ["pending", "sent"] } },
      orderBy: { id: "asc" },
      take: 50,
    });
    let done = 0;
    if (rows.length === 0 || rows[0]!.nextAttemptAt > BigInt(this.now())) return 0;
    try {
      await this.sameL1();
    } catch (err) {
      await this.backoff(rows[0]!, err);
      return 0;
    }
    for (const row of rows) {
      if (this.stopped) break;
      if (row.nextAttemptAt > BigInt(this.now())) break;
      try {
        const outcome = await this.process(row);
        if (outcome === "waiting") break;
        if (outcome === "done") done++;
      } catch (err) {
        await this.backoff(row, err);
        break;
      }
    }
    return done;
  }

  /** Simulates the row's call on the latest block (throws its revert). */
  private async simulate(row: Row): Promise<void> {
    await this.opts.client.simulateContract({
      ...this.callOf(row),
      address: this.opts.escrow,
      abi: escrowAbi,
      account: this.opts.wallet.account,
    } as Parameters<PublicClient["simulateContract"]>[0]);
  }

  /**
   * Whether the escrow refused this key in L1 block `blockNumber`: its settler was another then
   * (every call the settler makes checks that first, so a transaction of ours that reverted there
   * reverted Unauthorized). Read at that block, whatever the key's standing now (an operator may
   * have set it back since); from a node that no longer keeps that block's state, as it is now.
   * Throws when the L1 cannot say (backed off, nothing recorded).
   */
  private async refusedAt(blockNumber: bigint): Promise<boolean> {
    const settlerAt = (at?: bigint) =>
      this.opts.client.readContract({
        address: this.opts.escrow,
        abi: escrowAbi,
        functionName: "settler",
        ...(at !== undefined ? { blockNumber: at } : {}),
      }) as Promise<Address>;
    const settler = await settlerAt(blockNumber).catch(() => settlerAt());
    return settler.toLowerCase() !== this.address.toLowerCase();
  }

  /**
   * Throws unless the L1 is the chain the escrow index was built on (its chain id and genesis,
   * kept with the index's cursor) and the escrow has code there. An L1 restarted empty (a devnet
   * node, a provider pointed at another chain) would take every settlement as reverted (no bond,
   * not funded: a call to an address with no code even "succeeds"), each recorded as final and
   * never sent again once the right L1 is back: nothing is sent or judged meanwhile, and the
   * pass backs off as for an unreachable L1.
   */
  private async sameL1(): Promise<void> {
    const { client, escrow, prisma } = this.opts;
    const [chainId, genesis, code, cursor] = await Promise.all([
      client.getChainId(),
      client.getBlock({ blockNumber: 0n }),
      client.getCode({ address: escrow }),
      prisma.chainCursor.findUnique({ where: { escrow: escrow.toLowerCase() } }),
    ]);
    if (cursor && (cursor.chainId !== BigInt(chainId) || cursor.genesisHash !== genesis.hash)) {
      throw new Error(
        `L1 state lost: the node is chain ${chainId} with genesis ${genesis.hash}, the escrow ` +
          `index was built on chain ${cursor.chainId} with genesis ${cursor.genesisHash}`,
      );
    }
    if (!code || code === "0x") {
      throw new Error(`L1 state lost: no escrow contract at ${escrow} on the L1`);
    }
  }

  /**
   * Moves one row on: `done` (confirmed or reverted, final), `mined` (in a block, waiting for
   * its confirmations; the rows behind it may go), `waiting` (not mined yet; they may not).
   */
  private async process(row: Row): Promise<Outcome> {
    const { client } = this.opts;
    if (row.status === "sent" && row.txHash) {
      const receipt = await client
        .getTransactionReceipt({ hash: row.txHash as Hash })
        .catch(() => null);
      if (receipt) return this.finish(row, receipt);
      const known = await client.getTransaction({ hash: row.txHash as Hash }).catch(() => null);
      if (known) {
        const waitedMs = this.now() - Number(row.updatedAt);
        // Mined already (its receipt not served yet): looked at again next pass, not replaced.
        if (known.blockNumber !== null) return "waiting";
        if (waitedMs >= (this.opts.feeBumpAfterMs ?? 180_000)) return this.bumpFee(row, known);
        if (waitedMs > 60_000) {
          this.opts.log?.warn(
            { code: "SETTLEMENT_PENDING", settlement: row.key, txHash: row.txHash, waitedMs },
            "settlement transaction not mined yet: the settlements behind it wait",
          );
        }
        return "waiting";
      }
      // Never broadcast, or dropped: look on the chain, then send again, unless a transaction is
      // pending at the row's nonce (its replacement, sent by a process that died before
      // recording it): that one lands, or is dropped, first.
      if (row.nonce !== null && (await this.noncePending(row.nonce))) return "waiting";
    }
    const a = row.args as Record<string, unknown>;
    if (row.kind === "refund" && !(await this.mayRefund(BigInt(String(a.blockNumber))))) {
      // Refunds are owed for blocks the market cannot represent (the index) or that expired in
      // open proving (the aggregator): never one it may still bond or settle.
      return this.reverted(row, "refusing to refund a block the market may settle", row.txHash);
    }
    if (row.kind === "lock" && BigInt(String(a.amount)) === 0n) return this.cancelLock(row);
    await this.keepSearchFrom(row);
    const found = await this.findOnChain(row);
    if (found) {
      const receipt = await client.getTransactionReceipt({ hash: found });
      this.opts.log?.warn(
        { settlement: row.key, txHash: found },
        "settlement found on the chain: completed without sending again",
      );
      return this.finish(row, receipt);
    }
    const call = this.callOf(row);
    try {
      await this.simulate(row);
    } catch (err) {
      const revert = revertOf(err);
      // Unauthorized is a verdict on this key, not on the settlement: the escrow's owner rotated
      // its settler (or this is the wrong key). Every call reverts alike until the key is right,
      // so nothing is recorded as final: the row is tried again with backoff, logged each time.
      if (revert?.startsWith("Unauthorized")) {
        throw new SettlerNotAuthorized(revert);
      }
      if (revert) return this.reverted(row, revert, row.txHash, undefined, lockAmount(row));
      throw err;
    }
    const wallet = this.opts.wallet;
    const nonce = await client.getTransactionCount({
      address: wallet.account.address,
      blockTag: "pending",
    });
    // Signed for the chain the L1 says it is (the wallet is built before anyone asked it).
    this.chain ??= wallet.chain ?? l1Chain(await client.getChainId(), undefined, "L1");
    const data = encodeFunctionData({
      abi: escrowAbi,
      ...call,
    } as Parameters<typeof encodeFunctionData>[0]);
    // The node's estimate is for the state it sees now. A balance that changes before inclusion
    // (an account emptied by a withdrawal, written again by a settle or a slash) costs more,
    // and a transaction out of gas is a revert recorded for good: the limit keeps a margin.
    const estimate = await client.estimateGas({
      account: wallet.account,
      to: this.opts.escrow,
      data,
    });
    const prepared = await wallet.prepareTransactionRequest({
      to: this.opts.escrow,
      data,
      account: wallet.account,
      chain: this.chain,
      nonce,
      gas: (estimate * GAS_MARGIN_PERCENT) / 100n,
    } as Parameters<typeof wallet.prepareTransactionRequest>[0]);
    const signed = await wallet.signTransaction(
      prepared as Parameters<typeof wallet.signTransaction>[0],
    );
    const txHash = keccak256(signed);
    // Only if the row is still what this call was built from: the index may have cancelled it,
    // or shrunk a lock's amount, since it was read (then it is looked at again next pass).
    const marked = await this.opts.prisma.settlement.updateMany({
      where: {
        id: row.id,
        status: row.status,
        ...(row.kind === "lock" ? { args: { path: ["amount"], equals: lockAmount(row)! } } : {}),
      },
      data: {
        status: "sent",
        txHash,
        nonce,
        attempts: { increment: 1 },
        updatedAt: BigInt(this.now()),
      },
    });
    if (marked.count === 0) return "waiting";
    await this.opts.beforeBroadcast?.({ key: row.key, txHash });
    await client.sendRawTransaction({ serializedTransaction: signed });
    const receipt = await client.waitForTransactionReceipt({
      hash: txHash,
      timeout: this.opts.receiptTimeoutMs ?? 30_000,
    });
    return this.finish(row, receipt);
  }

  /** A block's reward may be refunded: outside the market's range, or expired in open proving. */
  private async mayRefund(block: bigint): Promise<boolean> {
    if (!inMarketRange(block)) return true;
    const row = await this.opts.prisma.block.findUnique({
      where: { number: Number(block) },
      select: { stage: true },
    });
    return row?.stage === STAGE.expired;
  }

  private callOf(row: Row): { functionName: string; args: unknown[] } {
    const a = row.args as Record<string, unknown>;
    const block = BigInt(row.blockNumber);
    switch (row.kind) {
      case "lock":
        return { functionName: "lockBond", args: [block, a.prover, BigInt(a.amount as string)] };
      case "slash":
        return { functionName: "slashBond", args: [block] };
      case "settle":
        return {
          functionName: "settle",
          args: [block, a.recipients, (a.amounts as string[]).map((x) => BigInt(x))],
        };
      case "penalty":
        return {
          functionName: "penalize",
          args: [a.prover, BigInt(a.amount as string), penaltyRef(String(a.penaltyId))],
        };
      case "refund":
        return { functionName: "refundReward", args: [BigInt(String(a.blockNumber))] };
      default:
        throw new Error(`unknown settlement kind ${row.kind}`);
    }
  }

  /** The hash of a transaction that already did this row's work, if the chain has one. */
  /** Whether a transaction of the settler's at `nonce` is pending, none at it mined yet. */
  private async noncePending(nonce: number): Promise<boolean> {
    const address = this.opts.wallet.account.address;
    const [mined, pending] = await Promise.all([
      this.opts.client.getTransactionCount({ address, blockTag: "latest" }),
      this.opts.client.getTransactionCount({ address, blockTag: "pending" }),
    ]);
    return mined <= nonce && pending > nonce;
  }

  /**
   * The row's transaction is still pending after SETTLER_FEE_BUMP_AFTER_MS: the same call at the
   * same nonce, with fees up at least 12.5% (a node refuses a replacement for less) and to the
   * node's current estimate, but never past maxFeePerGas (a replacement that would need more is
   * not sent: the transaction waits as it is). Recorded once the node has taken it; if the old one lands instead,
   * the next pass finds its event on the chain (findOnChain).
   */
  private async bumpFee(row: Row, known: Transaction): Promise<Outcome> {
    const { client, wallet } = this.opts;
    const up = (x: bigint | undefined) => (x === undefined ? 0n : (x * 1125n) / 1000n + 1n);
    const max = (a: bigint, b: bigint) => (a > b ? a : b);
    this.chain ??= wallet.chain ?? l1Chain(await client.getChainId(), undefined, "L1");
    const base = {
      to: known.to!,
      data: known.input,
      gas: known.gas,
      nonce: known.nonce,
      account: wallet.account,
      chain: this.chain,
    };
    // The least a node takes as a replacement, which the cap must leave room for.
    const least =
      known.maxFeePerGas !== undefined
        ? max(up(known.maxFeePerGas), up(known.maxPriorityFeePerGas))
        : up(known.gasPrice);
    const cap = this.opts.maxFeePerGas;
    if (cap !== undefined && least > cap) {
      // Said once per transaction, not at every pass while it waits.
      if (this.cappedTx === row.txHash) return "waiting";
      this.cappedTx = row.txHash;
      this.opts.log?.warn(
        {
          code: "SETTLEMENT_FEE_CAPPED",
          settlement: row.key,
          txHash: row.txHash,
          nonce: known.nonce,
          needed: String(least),
          cap: String(cap),
        },
        "settlement transaction still pending, and a replacement would pay more per gas than SETTLER_MAX_FEE_PER_GAS_WEI: it waits as it is",
      );
      return "waiting";
    }
    const atMost = (x: bigint) => (cap !== undefined && x > cap ? cap : x);
    let fees: Record<string, bigint>;
    if (known.maxFeePerGas !== undefined) {
      const now = await client.estimateFeesPerGas();
      const tip = atMost(max(now.maxPriorityFeePerGas, up(known.maxPriorityFeePerGas)));
      fees = {
        maxPriorityFeePerGas: tip,
        maxFeePerGas: atMost(max(max(now.maxFeePerGas, up(known.maxFeePerGas)), tip)),
      };
    } else {
      fees = { gasPrice: atMost(max(await client.getGasPrice(), up(known.gasPrice))) };
    }
    const prepared = await wallet.prepareTransactionRequest({ ...base, ...fees } as Parameters<
      typeof wallet.prepareTransactionRequest
    >[0]);
    const signed = await wallet.signTransaction(
      prepared as Parameters<typeof wallet.signTransaction>[0],
    );
    const txHash = keccak256(signed);
    // Recorded before it is broadcast, as every transaction is: a hash the node has is never
    // unknown to the row. Refused by the node, the row goes back to the one it still has.
    const marked = await this.opts.prisma.settlement.updateMany({
      where: { id: row.id, status: "sent", txHash: row.txHash },
      data: { txHash, attempts: { increment: 1 }, updatedAt: BigInt(this.now()) },
    });
    if (marked.count === 0) return "waiting";
    try {
      await client.sendRawTransaction({ serializedTransaction: signed });
    } catch (err) {
      await this.opts.prisma.settlement.updateMany({
        where: { id: row.id, status: "sent", txHash },
        data: { txHash: row.txHash },
      });
      throw err;
    }
    this.opts.log?.warn(
      {
        code: "SETTLEMENT_FEE_BUMPED",
        settlement: row.key,
        replaced: row.txHash,
        txHash,
        nonce: known.nonce,
        ...Object.fromEntries(Object.entries(fees).map(([k, v]) => [k, String(v)])),
      },
      "settlement transaction still pending: replaced with higher fees",
    );
    return "waiting";
  }

  /**
   * Before the row's first transaction: the first block one can be in (the head now, less a
   * reorg's depth: a transaction broadcast from here on can land no lower), kept on the row.
   */
  private async keepSearchFrom(row: Row): Promise<void> {
    if (row.searchFrom !== null || row.txHash !== null) return;
    const head = await this.opts.client.getBlockNumber({ cacheTime: 0 });
    const depth = BigInt(this.opts.maxReorgDepth ?? 64);
    const from = head > depth ? head - depth : 0n;
    await this.opts.prisma.settlement.updateMany({
      where: { id: row.id, searchFrom: null },
      data: { searchFrom: from },
    });
    row.searchFrom =
      (await this.opts.prisma.settlement.findUniqueOrThrow({ where: { id: row.id } })).searchFrom ??
      from;
  }

  /**
   * The row's action, already on the chain (sent by a process that died before recording it):
   * its event, looked for from the row's searchFrom to the head, at most logRange blocks an
   * eth_getLogs.
   */
  private async findOnChain(row: Row): Promise<Hash | null> {
    const eventName = eventOf[row.kind as keyof typeof eventOf];
    const a = row.args as Record<string, unknown>;
    const args =
      row.kind === "penalty"
        ? { ref: penaltyRef(String(a.penaltyId)) }
        : row.kind === "refund"
          ? { blockNumber: BigInt(String(a.blockNumber)) }
          : { blockNumber: BigInt(row.blockNumber) };
    const range = BigInt(this.opts.logRange ?? 1000);
    const head = await this.opts.client.getBlockNumber({ cacheTime: 0 });
    for (let from = row.searchFrom ?? this.opts.startBlock ?? 0n; from <= head; from += range) {
      const to = from + range - 1n < head ? from + range - 1n : head;
      const logs = await this.opts.client.getContractEvents({
        address: this.opts.escrow,
        abi: escrowAbi,
        eventName,
        args,
        fromBlock: from,
        toBlock: to,
      });
      const match = logs.find((l) => {
        if (row.kind !== "lock") return true;
        const got = l.args as { prover?: string; amount?: bigint };
        return (
          got.prover?.toLowerCase() === String(a.prover).toLowerCase() &&
          got.amount === BigInt(a.amount as string)
        );
      });
      if (match) return match.transactionHash;
    }
    return null;
  }

  private async finish(row: Row, receipt: TransactionReceipt): Promise<Outcome> {
    if (receipt.status !== "success") {
      // A duplicate that lost to an earlier transaction doing the same work (sent by a process
      // that died before recording it): the work is done, by that one.
      const earlier = await this.findOnChain(row);
      if (earlier && earlier !== receipt.transactionHash) {
        return this.finish(row, await this.opts.client.getTransactionReceipt({ hash: earlier }));
      }
      // Refused for the key (the owner rotated the escrow's settler while it was on its way):
      // still owed, as when the simulation says so; sent anew once the key is accepted.
      if (await this.refusedAt(receipt.blockNumber)) {
        await this.opts.prisma.settlement.update({
          where: { id: row.id },
          data: { status: "pending", txHash: null, nonce: null, receiptBlock: null },
        });
        throw new SettlerNotAuthorized(`Unauthorized(${this.address})`);
      }
      return this.reverted(
        row,
        "the transaction reverted on chain",
        receipt.transactionHash,
        receipt,
        row.kind === "lock" ? await this.lockAmountSent(receipt.transactionHash) : undefined,
      );
    }
    const eventName = eventOf[row.kind as keyof typeof eventOf];
    const events = parseEventLogs({ abi: escrowAbi, logs: receipt.logs, eventName }).filter(
      (l) => l.address.toLowerCase() === this.opts.escrow.toLowerCase(),
    );
    if (events.length === 0) {
      return this.reverted(
        row,
        `the transaction succeeded without a ${eventName} event`,
        receipt.transactionHash,
        receipt,
      );
    }
    const head = await this.opts.client.getBlockNumber({ cacheTime: 0 });
    if (head - receipt.blockNumber + 1n < BigInt(this.opts.confirmations ?? 1)) {
      // Mined but not yet final: looked at again next pass (a reorg that drops it sends it again).
      await this.opts.prisma.settlement.update({
        where: { id: row.id },
        data: {
          status: "sent",
          txHash: receipt.transactionHash,
          receiptBlock: receipt.blockNumber,
          updatedAt: BigInt(this.now()),
        },
      });
      return "mined";
    }
    await this.opts.prisma.settlement.update({
      where: { id: row.id },
      data: {
        status: "confirmed",
        txHash: receipt.transactionHash,
        receiptBlock: receipt.blockNumber,
        gasUsed: receipt.gasUsed.toString(),
        errorCode: null,
        error: null,
        updatedAt: BigInt(this.now()),
      },
    });
    this.opts.log?.info(
      { settlement: row.key, txHash: receipt.transactionHash, block: String(receipt.blockNumber) },
      "settlement confirmed",
    );
    return "done";
  }

  /**
   * A revert is final, recorded and never retried, except where the index changed what is owed
   * since the call was built (both sides take the lock row first, so either this sees the
   * index's change or the index sees the revert):
   * - a lock of `attempted` wei whose amount the index has since shrunk (a withdrawal the escrow
   *   took first, booked while the lock was on its way: that is why it reverted) is owed again
   *   with the shrunk amount, or cancelled when nothing is left (movements.ts, shrinkOwedLock);
   * - a slash whose block's lock the index has owed again since (NoBondLocked: the lock had
   *   reverted) is owed again, behind that lock; one whose lock was cancelled (no bond left to
   *   lock) is cancelled too.
   * A lock is owed again only after it reverted (it locked nothing), so it never locks twice.
   */
  private async reverted(
    row: Row,
    reason: string,
    txHash: string | null,
    receipt?: TransactionReceipt,
    attempted?: string,
  ): Promise<Outcome> {
    const now = BigInt(this.now());
    const outcome = await this.opts.prisma.$transaction(async (tx) => {
      const again = await this.owedAgain(tx, row, attempted);
      if (again === "cancelled") return "done" as const;
      if (again === "pending") {
        await tx.settlement.update({
          where: { id: row.id },
          data: {
            status: "pending",
            txHash: null,
            errorCode: "SETTLEMENT_OWED_AGAIN",
            error: `reverted (${reason}) after the escrow index changed what is owed: sent again`,
            nextAttemptAt: now,
            updatedAt: now,
          },
        });
        return "again" as const;
      }
      await tx.settlement.update({
        where: { id: row.id },
        data: {
          status: "reverted",
          txHash,
          errorCode: "SETTLEMENT_REVERTED",
          error: reason,
          receiptBlock: receipt?.blockNumber ?? null,
          gasUsed: receipt ? receipt.gasUsed.toString() : null,
          updatedAt: now,
        },
      });
      return "reverted" as const;
    });
    if (outcome === "again") {
      this.opts.log?.warn(
        { code: "SETTLEMENT_OWED_AGAIN", settlement: row.key, reason, txHash },
        "settlement reverted, but the escrow index has changed what is owed since: sent again",
      );
      // Nothing behind it goes before it (a block's slash waits for its lock).
      return "waiting";
    }
    if (outcome === "reverted") {
      this.opts.log?.error(
        { code: "SETTLEMENT_REVERTED", settlement: row.key, reason, txHash },
        "settlement reverted: recorded, not retried; the ledger and the escrow disagree on this block until an operator acts",
      );
    }
    return "done";
  }

  /** Whether a reverted row is owed again (see `reverted`), in `tx`; null: the revert is final. */
  private async owedAgain(
    tx: Tx,
    row: Row,
    attempted: string | undefined,
  ): Promise<"pending" | "cancelled" | null> {
    if (row.kind === "lock" && attempted !== undefined) {
      const [cur] = await tx.$queryRaw<{ status: string; amount: string | null }[]>`
        SELECT status, args->>'amount' AS amount FROM "Settlement" WHERE id = ${row.id} FOR UPDATE`;
      if (!cur || cur.status === "cancelled") return "cancelled";
      if (cur.amount === null || cur.amount === attempted) return null;
      if (BigInt(cur.amount) > 0n) return "pending";
      await tx.settlement.update({
        where: { id: row.id },
        data: bondWithdrawn(this.now()),
      });
      return "cancelled";
    }
    if (row.kind === "slash") {
      const [lock] = await tx.$queryRaw<{ status: string }[]>`
        SELECT status FROM "Settlement" WHERE key = ${`lock:${row.blockNumber}`} FOR UPDATE`;
      if (lock?.status === "pending" || lock?.status === "sent") return "pending";
      // The lock was cancelled (a withdrawal left no bond: the ledger's bond is 0 and its slash
      // undone, movements.ts): the escrow never held this block's bond from us, so the slash
      // (owed again after a reorg took it, sent again) had nothing to take, whatever the revert
      // says, and both sides agree it took nothing.
      if (lock?.status === "cancelled") {
        await tx.settlement.update({ where: { id: row.id }, data: bondWithdrawn(this.now()) });
        return "cancelled";
      }
    }
    return null;
  }

  /** A lock the index shrank to nothing: not sent (movements.ts, shrinkOwedLock). */
  private async cancelLock(row: Row): Promise<Outcome> {
    await this.opts.prisma.settlement.updateMany({
      where: { id: row.id, status: row.status },
      data: bondWithdrawn(this.now()),
    });
    return "done";
  }

  /** The amount a lockBond transaction asked for (decimal), read from the transaction. */
  private async lockAmountSent(hash: Hash): Promise<string | undefined> {
    const sent = await this.opts.client.getTransaction({ hash });
    const call = decodeFunctionData({ abi: escrowAbi, data: sent.input });
    return call.functionName === "lockBond" ? String(call.args[2]) : undefined;
  }

  private async backoff(row: Row, err: unknown): Promise<void> {
    const unauthorized = err instanceof SettlerNotAuthorized;
    const attempts = row.attempts + 1;
    const delay = Math.min(
      this.opts.retry.maxMs,
      this.opts.retry.baseMs * 2 ** Math.min(attempts - 1, 30),
    );
    await this.opts.prisma.settlement
      .update({
        where: { id: row.id },
        data: {
          attempts,
          nextAttemptAt: BigInt(this.now() + delay),
          errorCode: unauthorized ? "SETTLER_NOT_AUTHORIZED" : "L1_UNAVAILABLE",
          error: shortError(err),
          updatedAt: BigInt(this.now()),
        },
      })
      .catch(() => {});
    const fields = { settlement: row.key, retryInMs: delay, err: shortError(err) };
    // An operator must act on a refused key (set the escrow's settler back, or this key to it).
    if (unauthorized) {
      this.opts.log?.error(
        { code: "SETTLER_NOT_AUTHORIZED", ...fields },
        "the escrow refuses the settler key: settlements wait until it accepts it again",
      );
    } else {
      this.opts.log?.warn(
        { code: "L1_UNAVAILABLE", ...fields },
        "settlement transaction failed: retrying with backoff",
      );
    }
  }
}

/** The amount (decimal) a lock row asks the escrow for; undefined for other kinds. */
function lockAmount(row: Row): string | undefined {
  return row.kind === "lock" ? String((row.args as Record<string, unknown>).amount) : undefined;
}

/** The contract error's name and arguments if `err` is a revert, else null. */
function revertOf(err: unknown): string | null {
  if (!(err instanceof BaseError)) return null;
  const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
  if (!(revert instanceof ContractFunctionRevertedError)) return null;
  const name = revert.data?.errorName ?? revert.reason ?? "unknown revert";
  const args = revert.data?.args?.map((a) => String(a)).join(", ");
  return args ? `${name}(${args})` : name;
}

/**
 * What the settler must agree on with the escrow before it sends anything: the escrow's settler is
 * this key (or every call reverts), and its slash split is the aggregator's (or the ledger's slash
 * and the escrow's differ by the wei). Returns the disagreements, empty when there are none.
 */
export async function escrowMismatches(
  client: PublicClient,
  escrow: Address,
  expected: { settler: Address; slashToSequencerBps: number },
): Promise<string[]> {
  const [settler, bps] = await Promise.all([
    client.readContract({ address: escrow, abi: escrowAbi, functionName: "settler" }),
    client.readContract({
      address: escrow,
      abi: escrowAbi,
      functionName: "SLASH_TO_SEQUENCER_BPS",
    }),
  ]);
  const out: string[] = [];
  if (settler.toLowerCase() !== expected.settler.toLowerCase()) {
    out.push(`the escrow's settler is ${settler}, the settler key is ${expected.settler}`);
  }
  if (bps !== BigInt(expected.slashToSequencerBps)) {
    out.push(
      `the escrow's SLASH_TO_SEQUENCER_BPS is ${bps}, SLASH_TO_SEQUENCER_BPS is ${expected.slashToSequencerBps}`,
    );
  }
  return out;
}
