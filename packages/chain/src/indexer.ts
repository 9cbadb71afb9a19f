// The escrow indexer (COLLATERAL=chain, run by the relay): reads the escrow contract's events
// with viem and books them in the double-entry ledger.
//
// - Confirmed only: a block is indexed once it has L1_CONFIRMATIONS confirmations (1 = the head).
// - Once per log: a log's id is "<blockHash>:<logIndex>"; its row and its movement commit in one
//   transaction, and a log seen again (another relay process, a retried pass) is skipped.
// - Reorg-safe: the cursor keeps the hash of the last block indexed. When the L1 has a different
//   block at that height, the indexer walks its logs back from the newest, reverses the movement
//   of every log whose block is no longer on the chain (a movement of opposite legs, marked
//   removed), and indexes again from the newest block it still agrees with; a settlement
//   confirmed by a transaction in a block that left the chain is owed again (back to `sent`,
//   settler.ts). A range read must follow the cursor's block (its first block's parent) and keep
//   its last block across the read of its logs, or it is left for the next pass: a reorg after
//   the cursor's block was looked at is then found there and undone, never booked over.
// - Never stuck on one event: an event the market cannot represent (a reward funded for a block
//   beyond its last, MARKET_MAX_BLOCK: the escrow takes any uint256) is recorded, booked nowhere
//   and logged as an error (L1_EVENT_UNREPRESENTABLE, with its transaction); its reward is owed
//   back to the sequencer (movements.ts). Booking it would fail the range's transaction, cursor
//   included, on every pass. Nor on money the ledger no longer holds: a reorged deposit it
//   already spent, or a withdrawal it cannot explain, takes what is there and books the rest as a
//   shortfall (movements.ts), logged as an error (L1_SHORTFALL) and repaid from the prover's next
//   deposits.
// - Same chain: the chain id and the genesis block's hash are recorded on the first pass. An L1
//   that answers with others, or without the escrow's code, lost its state (a restarted devnet
//   node) or is another chain: nothing is indexed, and `assertReady` refuses what needs collateral
//   (503 L1_UNAVAILABLE) until an operator looks. So is an L1 that does not answer, or an index
//   not synced within L1_STALE_MS.
import { randomUUID } from "node:crypto";
import { DomainError } from "@prover-boost/core";
import { type Prisma, PrismaNamespace, type Tx } from "@prover-boost/db";
import { escrowAbi } from "@prover-boost/escrow";
import { type Address, BaseError, BlockNotFoundError, type Hash, type PublicClient } from "viem";
import { indexedRewardFunding, type RewardFunding } from "./funding.ts";
import {
  applyEscrowEvent,
  lockAddressesOf,
  reverseMovement,
  type Shortfall,
  unrepresentable,
} from "./movements.ts";

export interface IndexerOptions {
  prisma: Prisma;
  client: PublicClient;
  escrow: Address;
  confirmations: number;
  /** Most blocks asked for in one eth_getLogs. */
  logRange: number;
  /** First block to index (the escrow's deployment block). */
  startBlock: bigint;
  /**
   * Deepest reorg undone by itself: a log that left the chain more than this many blocks below
   * the cursor means the L1 lost its state (or is another chain); nothing is reversed then.
   */
  maxReorgDepth: number;
  /** Bids are refused when the last successful pass is older than this. */
  staleMs: number;
  pollMs: number;
  now?: () => number;
  log?: {
    info(o: object, m?: string): void;
    warn(o: object, m?: string): void;
    /** An event the market cannot represent (falls back to `warn` when absent). */
    error?(o: object, m?: string): void;
  };
}

export type IndexerHealth =
  | { ok: true; syncedAt: number; block: bigint }
  | { ok: false; reason: string; since: number };

export class EscrowIndexer {
  private health: IndexerHealth;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** The node was behind the index on the last pass (logged once). */
  private waitingForNode = false;
  private readonly now: () => number;
  private readonly key: string;

  constructor(private readonly opts: IndexerOptions) {
    this.now = opts.now ?? Date.now;
    this.key = opts.escrow.toLowerCase();
    this.health = { ok: false, reason: "the L1 index has not synced yet", since: this.now() };
  }

  get status(): IndexerHealth {
    return this.health;
  }

  /** Throws 503 L1_UNAVAILABLE unless the index is in step with a live, unchanged L1. */
  assertReady(): void {
    const h = this.health;
    if (!h.ok) throw new DomainError("L1_UNAVAILABLE", h.reason);
    if (this.now() - h.syncedAt > this.opts.staleMs) {
      throw new DomainError(
        "L1_UNAVAILABLE",
        `the L1 index has not synced for ${this.now() - h.syncedAt} ms`,
      );
    }
  }

  /** The indexed funding of a block's reward on this escrow (null: none booked). */
  rewardFunding(blockNumber: number): Promise<RewardFunding | null> {
    return indexedRewardFunding(this.opts.prisma, this.opts.escrow, blockNumber);
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      this.running = this.poll().then(() => {});
      await this.running;
      this.running = null;
      if (!this.stopped) this.timer = setTimeout(loop, this.opts.pollMs);
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One pass; never throws (the outcome is in `status`). Returns the logs newly indexed. */
  async poll(): Promise<number> {
    // Another index on the same database (another relay's) moved the cursor while this pass read
    // the chain: what it read may be of a chain the other has moved past, so it booked nothing.
    // The pass starts again at once from the other's cursor (a few times: each time the other
    // made progress), so a relay that loses the race still syncs.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pass();
      } catch (err) {
        if (err instanceof CursorMoved && attempt < CURSOR_RACE_TRIES) continue;
        this.failed(err);
        return 0;
      }
    }
  }

  private failed(err: unknown) {
    if (err instanceof UnwindFailed) {
      // The index holds logs the chain no longer has: bids stop at once, whatever the cause.
      this.fail(`a reorg could not be undone: ${shortError(err.cause)}`);
    } else if (err instanceof CursorMoved) {
      this.fail(`${err.message}, ${CURSOR_RACE_TRIES} times in a row`, true);
    } else if (isDatabaseError(err)) {
      // The database refused the pass (a deadlock Postgres broke with an auction's close, a
      // restart), which booked nothing. The index is as good as its last pass, so bids go on
      // until it is stale; the next pass tries again.
      this.fail(`the database refused the index's pass: ${shortError(err)}`, true);
    } else if (err instanceof BaseError) {
      this.fail(`the L1 is unreachable or refused a request: ${shortError(err)}`);
    } else {
      this.fail(`the index's pass failed: ${shortError(err)}`);
    }
  }

  /** `lagging`: keeps the last sync (the index is still as good as it was) until it is stale. */
  private fail(reason: string, lagging = false) {
    if (lagging && this.health.ok) {
      if (!this.waitingForNode) {
        this.opts.log?.warn({ reason }, "escrow index waits: its last sync stands until stale");
      }
      this.waitingForNode = true;
      return;
    }
    if (this.health.ok || this.health.reason !== reason) {
      this.opts.log?.warn({ reason }, "escrow index not ready: bids are refused");
      this.health = { ok: false, reason, since: this.now() };
    }
  }

  private async pass(): Promise<number> {
    const { client, prisma } = this.opts;
    const [chainId, genesis, head, code] = await Promise.all([
      client.getChainId(),
      client.getBlock({ blockNumber: 0n }),
      client.getBlockNumber({ cacheTime: 0 }),
      client.getCode({ address: this.opts.escrow }),
    ]);
    let cursor = await prisma.chainCursor.findUnique({ where: { escrow: this.key } });
    if (!cursor) {
      cursor = await prisma.chainCursor.upsert({
        where: { escrow: this.key },
        create: {
          escrow: this.key,
          chainId: BigInt(chainId),
          genesisHash: genesis.hash!,
          block: this.opts.startBlock - 1n,
          blockHash: null,
          updatedAt: BigInt(this.now()),
        },
        update: {},
      });
    }
    if (cursor.chainId !== BigInt(chainId) || cursor.genesisHash !== genesis.hash) {
      this.fail(
        `L1 state lost: the node at L1_RPC_URL is chain ${chainId} with genesis ${genesis.hash}, ` +
          `the index was built on chain ${cursor.chainId} with genesis ${cursor.genesisHash}`,
      );
      return 0;
    }
    if (!code || code === "0x") {
      this.fail(`no escrow contract at ${this.opts.escrow} on the L1 (state lost?)`);
      return 0;
    }
    let from = cursor.block + 1n;
    // The hash the next range's first block must follow (null: the index starts here).
    let parent: string | null = cursor.blockHash;
    // The cursor's version this pass expects to find when it books (every move adds one).
    let version = cursor.version;
    if (cursor.blockHash !== null) {
      // A node behind the index (one of a provider's load-balanced nodes lagging a few blocks)
      // says nothing about the indexed blocks: nothing is indexed or undone until it has caught
      // up, when a reorg, if there was one, shows as another block at the cursor's height. The
      // index is not synced meanwhile (L1_STALE_MS counts).
      if (cursor.block > head) {
        this.fail("the L1 node's head is behind the last block indexed (a lagging node)", true);
        return 0;
      }
      const there = await client.getBlock({ blockNumber: cursor.block });
      if (there.hash !== cursor.blockHash) {
        const kept = await this.unwind(head, cursor).catch((err: unknown) => {
          throw err instanceof CursorMoved ? err : new UnwindFailed(err);
        });
        if (kept === null) return 0;
        from = kept.block + 1n;
        parent = kept.hash;
        version = cursor.version + 1n;
      }
    }
    const safe = head - BigInt(this.opts.confirmations - 1);
    let indexed = 0;
    while (from <= safe) {
      const to = minBig(from + BigInt(this.opts.logRange) - 1n, safe);
      const read = await this.readRange(from, to).catch((err: unknown) => {
        if (err instanceof BlockNotFoundError) return null;
        throw err;
      });
      if (read === null) {
        // A block below the head the node gave is not there (another of a provider's nodes,
        // lagging, answered): as for a lagging node, the index waits for it.
        this.fail(`the L1 node has no block ${from}..${to} yet (a lagging node)`, true);
        return indexed;
      }
      const { first, last, logs, lastAgain } = read;
      // A reorg since the cursor's block was looked at (the range does not follow it: the next
      // pass finds the cursor's block gone and unwinds), or during the reads (the range's last
      // block changed, or holds logs of another): tried again next pass rather than mix two
      // chains. Not synced meanwhile: the last sync stands until L1_STALE_MS, as for a lagging
      // node, so nodes that keep disagreeing do not keep bids on a stale index.
      if (
        (parent !== null && first.parentHash !== parent) ||
        lastAgain.hash !== last.hash ||
        logs.some((l) => l.blockNumber === to && l.blockHash !== last.hash)
      ) {
        this.fail(`the L1 changed while blocks ${from}..${to} were read (a reorg)`, true);
        return indexed;
      }
      indexed += await this.book(logs, from, version, to, last.hash!);
      version += 1n;
      from = to + 1n;
      parent = last.hash;
    }
    this.health = { ok: true, syncedAt: this.now(), block: from - 1n };
    this.waitingForNode = false;
    return indexed;
  }

  /** A range's first and last blocks, its logs, then its last block read again. */
  private async readRange(from: bigint, to: bigint) {
    const { client } = this.opts;
    const [first, last] = await Promise.all([
      client.getBlock({ blockNumber: from }),
      client.getBlock({ blockNumber: to }),
    ]);
    const logs = await client.getContractEvents({
      address: this.opts.escrow,
      abi: escrowAbi,
      fromBlock: from,
      toBlock: to,
      strict: true,
    });
    const lastAgain = await client.getBlock({ blockNumber: to });
    return { first, last, logs, lastAgain };
  }

  /**
   * Books a range's logs and moves the cursor to `to`, in one transaction. A settlement
   * confirmed by a transaction in a block the range holds (or up to L1_MAX_REORG_DEPTH blocks
   * before it: a settler that read its receipt after the index passed) whose event the index
   * has not booked is owed again: that transaction is not on the chain the index follows (a
   * reorg took its block before the index got to it, or the settler read a receipt from a fork).
   * Back to `sent`, the settler looks for it and, if the chain lost it, sends it again.
   */
  private async book(
    logs: {
      blockHash: Hash;
      blockNumber: bigint;
      logIndex: number;
      transactionHash: Hash;
      eventName: string;
      args: unknown;
    }[],
    from: bigint,
    version: bigint,
    to: bigint,
    toHash: Hash,
  ): Promise<number> {
    const now = this.now();
    // Events recorded but not booked (the market cannot represent them), logged once committed.
    const unbooked: object[] = [];
    const shortfalls: Shortfall[] = [];
    let reopened = 0;
    const booked = await this.opts.prisma.$transaction(
      async (tx) => {
        unbooked.length = 0;
        shortfalls.length = 0;
        await this.lockCursor(tx, version);
        await lockAddressesOf(
          tx,
          logs.map((l) => l.args),
        );
        // First, before any log is applied (a withdrawal booked next shrinks an owed lock only
        // if it is not confirmed). Every settler call emits an escrow event, so a confirmed
        // transaction has a log, booked before or in this range.
        reopened = await tx.$executeRaw`
          UPDATE "Settlement" AS s
          SET status = 'sent', "receiptBlock" = NULL, "updatedAt" = ${BigInt(now)}
          WHERE s.status = 'confirmed'
            AND s."receiptBlock" BETWEEN ${from - BigInt(this.opts.maxReorgDepth)} AND ${to}
            AND NOT s."txHash" = ANY(${logs.map((l) => l.transactionHash)}::text[])
            AND NOT EXISTS (
              SELECT 1 FROM "ChainLog" AS l
              WHERE l.escrow = ${this.key} AND NOT l.removed
                AND l."blockNumber" = s."receiptBlock" AND l."txHash" = s."txHash")`;
        let n = 0;
        for (const log of logs) {
          const id = `${log.blockHash}:${log.logIndex}`;
          const args = log.args as Record<string, unknown>;
          // New, or back on the chain after a reorg had removed it (the chain went back to the
          // block it was in): booked again, under a movement id of its own.
          const inserted = await tx.$queryRaw<{ id: string; again: boolean }[]>`
            INSERT INTO "ChainLog" (id, escrow, "blockNumber", "blockHash", "logIndex", "txHash",
              event, args, "createdAt")
            VALUES (${id}, ${this.key}, ${log.blockNumber}, ${log.blockHash}, ${log.logIndex},
              ${log.transactionHash}, ${log.eventName}, ${jsonArgs(args)}::jsonb, ${BigInt(now)})
            ON CONFLICT (id) DO UPDATE SET removed = false WHERE "ChainLog".removed
            RETURNING id, (xmax <> 0) AS again`;
          if (inserted.length === 0) continue;
          const again = inserted[0]!.again;
          const movementId = await applyEscrowEvent(
            tx,
            { eventName: log.eventName, args },
            {
              movementId: again ? `l1:${id}:${randomUUID()}` : `l1:${id}`,
              ref: id,
              nowMs: now,
              shortfalls,
            },
          );
          // Booked again, the log's id is this booking's, none included: its first booking was
          // undone when the log left the chain, and a later reorg must not undo it again.
          if (movementId || again) {
            await tx.chainLog.update({ where: { id }, data: { movementId } });
          }
          const why = unrepresentable({ eventName: log.eventName, args });
          if (why) {
            unbooked.push({
              code: "L1_EVENT_UNREPRESENTABLE",
              event: log.eventName,
              blockNumber: String(args.blockNumber),
              txHash: log.transactionHash,
              log: id,
              l1Block: String(log.blockNumber),
              reason: why,
            });
          }
          n++;
        }
        await this.moveCursor(tx, to, toHash, now);
        return n;
      },
      { timeout: 30_000 },
    );
    this.logShortfalls(shortfalls);
    const log = this.opts.log;
    if (reopened > 0) {
      log?.warn(
        { settlementsOwedAgain: reopened, from: String(from), to: String(to) },
        "settlements confirmed by transactions not on the chain the index follows: owed again",
      );
    }
    for (const o of unbooked) {
      (log?.error ?? log?.warn)?.call(
        log,
        o,
        "escrow event the market cannot represent: recorded, not booked; the index goes on",
      );
    }
    return booked;
  }

  private logShortfalls(shortfalls: readonly Shortfall[]) {
    const log = this.opts.log;
    for (const s of shortfalls) {
      (log?.error ?? log?.warn)?.call(
        log,
        { code: "L1_SHORTFALL", account: s.account, amount: String(s.amount) },
        "the L1 took back money the ledger no longer held: booked as a shortfall, repaid from the prover's next deposits",
      );
    }
  }

  /**
   * Locks the cursor's row and checks it has not moved since this pass read it (its `version`,
   * which every move adds one to: a block and hash could come back after a reorg undone):
   * indexes of several relays share it, and one that moved it meanwhile may have done so on
   * another chain than the one this pass read. Throws CursorMoved if it has.
   */
  private async lockCursor(tx: Tx, version: bigint) {
    const [row] = await tx.$queryRaw<{ version: bigint }[]>`
      SELECT version FROM "ChainCursor" WHERE escrow = ${this.key} FOR UPDATE`;
    if (row?.version !== version) throw new CursorMoved();
  }

  private moveCursor(tx: Tx, block: bigint, blockHash: string | null, now: number) {
    return tx.chainCursor.update({
      where: { escrow: this.key },
      data: { block, blockHash, updatedAt: BigInt(now), version: { increment: 1 } },
    });
  }

  /**
   * The L1 no longer has the cursor's block: reverses the logs of blocks that left the chain,
   * newest first, until a block with logs that is still there; moves the cursor to it and returns
   * its number (the block before the start when none is left). Null, having changed nothing,
   * when a log deeper than maxReorgDepth would have to go.
   */
  private async unwind(
    head: bigint,
    cursor: { block: bigint; version: bigint },
  ): Promise<{ block: bigint; hash: string | null } | null> {
    const cursorBlock = cursor.block;
    const { prisma, client } = this.opts;
    const live = await prisma.chainLog.findMany({
      where: { escrow: this.key, removed: false },
      orderBy: [{ blockNumber: "desc" }, { logIndex: "desc" }],
      select: { id: true, blockNumber: true, blockHash: true, movementId: true, txHash: true },
    });
    const hashAt = new Map<bigint, Hash | null>();
    let keep: { block: bigint; hash: string } | null = null;
    const gone: typeof live = [];
    for (const log of live) {
      if (!hashAt.has(log.blockNumber)) {
        hashAt.set(
          log.blockNumber,
          log.blockNumber <= head
            ? ((await client.getBlock({ blockNumber: log.blockNumber })).hash ?? null)
            : null,
        );
      }
      if (hashAt.get(log.blockNumber) === log.blockHash) {
        keep = { block: log.blockNumber, hash: log.blockHash };
        break;
      }
      gone.push(log);
    }
    const deepest = gone.at(-1);
    if (deepest && deepest.blockNumber + BigInt(this.opts.maxReorgDepth) < cursorBlock) {
      this.fail(
        `L1 state lost: the indexed log in block ${deepest.blockNumber} is no longer on the chain, ` +
          `more than ${this.opts.maxReorgDepth} blocks below the last block indexed (${cursorBlock})`,
      );
      return null;
    }
    const now = this.now();
    const shortfalls: Shortfall[] = [];
    let reopened = 0;
    await prisma.$transaction(
      async (tx) => {
        shortfalls.length = 0;
        await this.lockCursor(tx, cursor.version);
        // The events undone, read for the addresses they name (only theirs, not every log's).
        const events = await tx.chainLog.findMany({
          where: { id: { in: gone.map((l) => l.id) } },
          select: { args: true },
        });
        await lockAddressesOf(
          tx,
          events.map((e) => e.args),
        );
        for (const log of gone) {
          const marked = await tx.chainLog.updateMany({
            where: { id: log.id, removed: false },
            data: { removed: true },
          });
          if (marked.count === 1 && log.movementId) {
            await reverseMovement(tx, log.movementId, { ref: log.id, nowMs: now, shortfalls });
          }
        }
        // A settlement confirmed by a transaction whose block left the chain (a reorg deeper
        // than L1_CONFIRMATIONS) is owed again: back to `sent`, so the settler looks for its
        // transaction, and sends it again (at most one lands: settler.ts) if the chain lost it.
        reopened = await tx.$executeRaw`
          UPDATE "Settlement" SET status = 'sent', "receiptBlock" = NULL, "updatedAt" = ${BigInt(now)}
          WHERE status = 'confirmed' AND "txHash" = ANY(${gone.map((l) => l.txHash)}::text[])`;
        await this.moveCursor(
          tx,
          keep?.block ?? this.opts.startBlock - 1n,
          keep?.hash ?? null,
          now,
        );
      },
      { timeout: 30_000 },
    );
    this.logShortfalls(shortfalls);
    if (gone.length > 0) {
      this.opts.log?.warn(
        {
          reversed: gone.length,
          settlementsOwedAgain: reopened,
          resumeAfter: String(keep?.block ?? "start"),
        },
        "L1 reorg: movements of logs no longer on the chain reversed",
      );
    }
    return keep ?? { block: this.opts.startBlock - 1n, hash: null };
  }
}

const minBig = (a: bigint, b: bigint) => (a < b ? a : b);

function jsonArgs(args: Record<string, unknown>): string {
  return JSON.stringify(args, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}

export function shortError(err: unknown): string {
  const e = err as { shortMessage?: unknown; message?: unknown };
  const m = typeof e?.shortMessage === "string" ? e.shortMessage : String(e?.message ?? err);
  // The first line that says something (a Prisma error starts with a blank one).
  return (m.split("\n").find((l) => l.trim() !== "") ?? "").trim().slice(0, 300);
}

/** Passes in a row that may find the shared cursor moved before one counts as failed. */
const CURSOR_RACE_TRIES = 5;

/** The shared cursor moved under a pass (another relay's index): the pass books nothing. */
class CursorMoved extends Error {
  override readonly name = "CursorMoved";
  constructor() {
    super("another index moved the L1 cursor during this pass");
  }
}

/** Undoing a reorg failed (whatever the cause): the index holds logs the chain no longer has. */
class UnwindFailed extends Error {
  override readonly name = "UnwindFailed";
  constructor(override readonly cause: unknown) {
    super("a reorg could not be undone");
  }
}

/** What the Postgres driver's own errors say (a connection lost, a query timed out). */
const DRIVER_ERRORS = [
  "Query read timeout",
  "Connection terminated",
  "ECONNREFUSED",
  "ECONNRESET",
  "timeout exceeded when trying to connect",
];

/**
 * An error of the database's, not the L1's or the index's own: Prisma's, or the Postgres
 * driver's on a connection lost or a query timed out (it reaches Prisma's caller as it is).
 */
function isDatabaseError(err: unknown): boolean {
  if (
    err instanceof PrismaNamespace.PrismaClientKnownRequestError ||
    err instanceof PrismaNamespace.PrismaClientUnknownRequestError ||
    err instanceof PrismaNamespace.PrismaClientInitializationError ||
    err instanceof PrismaNamespace.PrismaClientRustPanicError
  ) {
    return true;
  }
  if (err instanceof BaseError || !(err instanceof Error)) return false;
  return DRIVER_ERRORS.some((m) => err.message.includes(m));
}
