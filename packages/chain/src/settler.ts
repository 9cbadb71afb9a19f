// The settler (COLLATERAL=chain, run by the aggregator): sends the escrow the transactions the
// aggregator's decisions owe it, with the settler key.
//
// The aggregator writes each one as a Settlement row in the same Postgres transaction as the
// ledger movement it mirrors (lock at close, slash at a missed deadline, settle at payout, which
// also releases a bond still locked; and the relay's withholding and invalid-proof penalties,
// written by the ledger's chargePenalty, key `penalty:<id>`), so a decision and its transaction are never one without the
// other. The settler sends them one at a time in id order (a block's lock before its slash or
// settlement) from one key, so nonces are assigned in order:
//
// - Before sending, it looks on the chain for the action's event (BondLocked, BondSlashed,
//   BlockSettled of that block; Penalized with the penalty's ref). If it is there, an earlier process sent it and stopped before
//   recording the receipt: the row is completed from the chain, nothing is sent again.
// - It simulates the call first; a revert (the contract's guard: settled already, no bond, not
//   funded, ...) is recorded with the revert's name, logged with code SETTLEMENT_REVERTED, and
//   never retried. A receipt with a failed status is recorded the same way.
// - The transaction is signed locally and its hash and nonce are recorded (status `sent`) before
//   it is broadcast, so a crash after broadcasting leaves a hash to look up.
// - Transient failures (the L1 unreachable, a timeout, a nonce taken) are retried with
//   exponential backoff, SETTLER_RETRY_BASE_MS doubling up to SETTLER_RETRY_MAX_MS; later rows
//   wait for the one in front.
// - A lock whose bond a withdrawal the escrow took first left at nothing, and that block's slash,
//   are `cancelled` by the escrow index before they are sent (movements.ts), and never sent.
// And the contract settles a block at most once, whatever happens here.
import type { Prisma, Tx } from "@prover-boost/db";
import { escrowAbi, l1Chain } from "@prover-boost/escrow";
import {
  type Account,
  type Address,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  encodeFunctionData,
  type Hash,
  keccak256,
  type PublicClient,
  parseEventLogs,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from "viem";
import { shortError } from "./indexer.ts";
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
  | { kind: "settle"; blockNumber: number; recipients: string[]; amounts: bigint[] };

/** Records a settlement owed to the escrow, in the caller's transaction (once per kind and block). */
export async function enqueueSettlement(
  tx: Tx,
  action: SettlementAction,
  nowMs: number,
): Promise<void> {
  const { kind, blockNumber, ...rest } = action;
  const args = JSON.parse(
    JSON.stringify(rest, (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
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
        if (waitedMs > 60_000) {
          this.opts.log?.warn(
            { code: "SETTLEMENT_PENDING", settlement: row.key, txHash: row.txHash, waitedMs },
            "settlement transaction not mined yet: the settlements behind it wait",
          );
        }
        return "waiting";
      }
      // Never broadcast, or dropped: look on the chain, then send again.
    }
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
      await client.simulateContract({
        ...call,
        address: this.opts.escrow,
        abi: escrowAbi,
        account: this.opts.wallet.account,
      } as Parameters<PublicClient["simulateContract"]>[0]);
    } catch (err) {
      const revert = revertOf(err);
      if (revert) return this.reverted(row, revert, row.txHash);
      throw err;
    }
    const wallet = this.opts.wallet;
    const nonce = await client.getTransactionCount({
      address: wallet.account.address,
      blockTag: "pending",
    });
    // Signed for the chain the L1 says it is (the wallet is built before anyone asked it).
    this.chain ??= wallet.chain ?? l1Chain(await client.getChainId(), undefined, "L1");
    const prepared = await wallet.prepareTransactionRequest({
      to: this.opts.escrow,
      data: encodeFunctionData({
        abi: escrowAbi,
        ...call,
      } as Parameters<typeof encodeFunctionData>[0]),
      account: wallet.account,
      chain: this.chain,
      nonce,
    } as Parameters<typeof wallet.prepareTransactionRequest>[0]);
    const signed = await wallet.signTransaction(
      prepared as Parameters<typeof wallet.signTransaction>[0],
    );
    const txHash = keccak256(signed);
    await this.opts.prisma.settlement.update({
      where: { id: row.id },
      data: {
        status: "sent",
        txHash,
        nonce,
        attempts: { increment: 1 },
        updatedAt: BigInt(this.now()),
      },
    });
    await this.opts.beforeBroadcast?.({ key: row.key, txHash });
    await client.sendRawTransaction({ serializedTransaction: signed });
    const receipt = await client.waitForTransactionReceipt({
      hash: txHash,
      timeout: this.opts.receiptTimeoutMs ?? 30_000,
    });
    return this.finish(row, receipt);
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
      default:
        throw new Error(`unknown settlement kind ${row.kind}`);
    }
  }

  /** The hash of a transaction that already did this row's work, if the chain has one. */
  private async findOnChain(row: Row): Promise<Hash | null> {
    const eventName = eventOf[row.kind as keyof typeof eventOf];
    const a = row.args as Record<string, unknown>;
    const logs = await this.opts.client.getContractEvents({
      address: this.opts.escrow,
      abi: escrowAbi,
      eventName,
      args:
        row.kind === "penalty"
          ? { ref: penaltyRef(String(a.penaltyId)) }
          : { blockNumber: BigInt(row.blockNumber) },
      fromBlock: 0n,
      toBlock: "latest",
    });
    const match = logs.find((l) => {
      if (row.kind !== "lock") return true;
      const args = l.args as { prover?: string; amount?: bigint };
      return (
        args.prover?.toLowerCase() === String(a.prover).toLowerCase() &&
        args.amount === BigInt(a.amount as string)
      );
    });
    return match?.transactionHash ?? null;
  }

  private async finish(row: Row, receipt: TransactionReceipt): Promise<Outcome> {
    if (receipt.status !== "success") {
      // A duplicate that lost to an earlier transaction doing the same work (sent by a process
      // that died before recording it): the work is done, by that one.
      const earlier = await this.findOnChain(row);
      if (earlier && earlier !== receipt.transactionHash) {
        return this.finish(row, await this.opts.client.getTransactionReceipt({ hash: earlier }));
      }
      return this.reverted(
        row,
        "the transaction reverted on chain",
        receipt.transactionHash,
        receipt,
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

  private async reverted(
    row: Row,
    reason: string,
    txHash: string | null,
    receipt?: TransactionReceipt,
  ): Promise<Outcome> {
    await this.opts.prisma.settlement.update({
      where: { id: row.id },
      data: {
        status: "reverted",
        txHash,
        errorCode: "SETTLEMENT_REVERTED",
        error: reason,
        receiptBlock: receipt?.blockNumber ?? null,
        gasUsed: receipt ? receipt.gasUsed.toString() : null,
        updatedAt: BigInt(this.now()),
      },
    });
    this.opts.log?.error(
      { code: "SETTLEMENT_REVERTED", settlement: row.key, reason, txHash },
      "settlement reverted: recorded, not retried; the ledger and the escrow disagree on this block until an operator acts",
    );
    return "done";
  }

  private async backoff(row: Row, err: unknown): Promise<void> {
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
          errorCode: "L1_UNAVAILABLE",
          error: shortError(err),
          updatedAt: BigInt(this.now()),
        },
      })
      .catch(() => {});
    this.opts.log?.warn(
      { code: "L1_UNAVAILABLE", settlement: row.key, retryInMs: delay, err: shortError(err) },
      "settlement transaction failed: retrying with backoff",
    );
  }
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
