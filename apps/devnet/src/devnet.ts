// The devnet: relay, aggregator, a simulated sequencer and K simulated operators with W workers
// each, in one process on embedded defaults (PGlite, a private redis-server) or on the
// Postgres and Redis you point it at. It runs until N blocks are paid, or until stopped.
import { randomBytes } from "node:crypto";
import { createAggregator } from "@prover-boost/aggregator";
import type { AccountReconciliation } from "@prover-boost/chain";
import { aggregatorEnv, domainFromEnv, parseEnv, redactUrl, relayEnv } from "@prover-boost/config";
import { isFinalStage } from "@prover-boost/core";
import { createRedis, deleteKeysWithPrefix } from "@prover-boost/queue";
import { createRelay } from "@prover-boost/relay";
import { type BlockView, RelayClient } from "@prover-boost/sdk";
import { poolBackend } from "@prover-boost/worker";
import { getAddress, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { openDevnetDatabase } from "./database.ts";
import { type DevnetL1, startDevnetL1 } from "./l1.ts";
import { SimulatedOperator } from "./operators.ts";
import { provideRedis, RedisUnavailableError } from "./redis-server.ts";
import { sequencerKeyOf } from "./seed.ts";
import { type OpenedBlock, openBlockAuction } from "./sequencer.ts";

export interface DevnetOptions {
  blocks?: number | undefined;
  txs: number;
  operators: number;
  workers: number;
  seed: string;
  port: number;
  blockTimeMs: number;
  biddingMs: number;
  deadlineMs: number;
  simDurationsMs: Record<string, number>;
  /** The proof system of every block (the relay's PROOF_SYSTEM); default sim. */
  proofs?: "sim" | "honk";
  /** honk: proving threads shared by all simulated operators; default 1. */
  proveThreads?: number;
  env: NodeJS.ProcessEnv;
  /** Postgres schema for the devnet (default prover_boost_devnet); it is reset at start. */
  schema?: string;
  /**
   * Run on a local L1: anvil, the escrow deployed, COLLATERAL=chain; operators deposit on the
   * escrow, the sequencer funds each reward, the aggregator locks, slashes and settles on chain.
   */
  chain?: boolean;
  onBlock?: (view: BlockView, opened: OpenedBlock) => void;
  onInfo?: (message: string) => void;
  /** Once the relay listens: its URL and the explorer's. */
  onListening?: (urls: { relayUrl: string; explorerUrl: string }) => void;
  signal?: AbortSignal;
}

export interface DevnetBlockReport {
  number: number;
  stage: string;
  winner: string | null;
  feeBps: number | null;
  blockReward: string;
  txs: number;
  jobs: number;
  rootProof: string | null;
  makespanMs: number | null;
  payouts: { recipient: string; role: string; amount: string }[];
}

export interface DevnetChainReport {
  escrow: string;
  settlements: { block: number; kind: string; status: string; txHash: string | null }[];
  /** Every address's escrow balances next to the ledger's (wei as decimal strings). */
  reconciliation: {
    address: string;
    chain: { free: string; locked: string; pending: string };
    ledger: { free: string; locked: string; pending: string };
    matches: boolean;
  }[];
  /** Whether every address matched and every settlement was confirmed. */
  reconciled: boolean;
}

/**
 * The devnet's own four-field signing domain: a local chain id and a verifying-contract address
 * no real deployment uses, so nothing signed for the devnet verifies elsewhere, nor the reverse.
 * CHAIN_ID, VERIFYING_CONTRACT or EIP712_LEGACY_DOMAIN in the environment take precedence.
 */
export const DEVNET_CHAIN_ID = 1_337_000;
export const DEVNET_VERIFYING_CONTRACT = getAddress(
  `0x${keccak256(toHex("prover-boost devnet verifying contract")).slice(-40)}`,
);

function devnetDomainEnv(env: Record<string, string | undefined>): Record<string, string> {
  if (env.CHAIN_ID || env.VERIFYING_CONTRACT || env.EIP712_LEGACY_DOMAIN === "true") return {};
  return { CHAIN_ID: String(DEVNET_CHAIN_ID), VERIFYING_CONTRACT: DEVNET_VERIFYING_CONTRACT };
}

/** Collateral each simulated operator deposits on the escrow in chain mode (wei). */
const CHAIN_DEPOSIT = 5n * 10n ** 18n;

const strings = (b: { free: bigint; locked: bigint; pending: bigint }) => ({
  free: b.free.toString(),
  locked: b.locked.toString(),
  pending: b.pending.toString(),
});

export interface DevnetReport {
  proofSystem: "sim" | "honk";
  blocks: DevnetBlockReport[];
  chain?: DevnetChainReport;
}

export async function runDevnet(opts: DevnetOptions): Promise<DevnetReport> {
  const proofSystem = opts.proofs ?? "sim";
  const info = opts.onInfo ?? (() => {});
  const redis = await provideRedis(opts.env.REDIS_URL);
  info(
    redis.owned
      ? `started redis-server${redis.pid ? ` (pid ${redis.pid})` : ""} at ${redactUrl(redis.url)}`
      : `using Redis at ${redactUrl(redis.url)}`,
  );
  // Its own Redis gone, nothing can go on (blocks would stall without a word): the devnet stops
  // and says why.
  let fatal: Error | null = null;
  void redis.died?.then((why) => {
    fatal = new RedisUnavailableError(`the devnet's redis-server ${why}: stopping`);
    info(fatal.message);
  });
  const sequencer = privateKeyToAccount(sequencerKeyOf(opts.seed));
  const baseEnv = {
    ...opts.env,
    ...devnetDomainEnv(opts.env),
    REDIS_URL: redis.url,
    REDIS_PREFIX: `pb-devnet-${randomBytes(4).toString("hex")}`,
    SEQUENCERS: sequencer.address,
    ADMIN_TOKEN: opts.env.ADMIN_TOKEN ?? randomBytes(16).toString("hex"),
    LEASE_MS: opts.env.LEASE_MS ?? "5000",
    PROOF_SYSTEM: proofSystem,
    AGGREGATOR_TICK_MS: opts.env.AGGREGATOR_TICK_MS ?? "100",
    // The devnet's own auctions leave deadlineMs to prove; the relay must accept them.
    MIN_PROVING_WINDOW_MS:
      opts.env.MIN_PROVING_WINDOW_MS ?? String(Math.min(60_000, opts.deadlineMs)),
  };
  let l1: DevnetL1 | null = null;
  if (opts.chain) {
    try {
      l1 = await startDevnetL1({
        seed: opts.seed,
        sequencer: sequencer.address,
        slashToSequencerBps: parseEnv(aggregatorEnv, baseEnv).SLASH_TO_SEQUENCER_BPS,
        confirmations: opts.env.L1_CONFIRMATIONS,
      });
    } catch (err) {
      await redis.stop();
      throw err;
    }
    info(`started anvil at ${l1.url}, escrow deployed at ${l1.escrow}`);
    Object.assign(baseEnv, l1.env);
    await l1.fund(sequencer.address, "1000");
  }
  const relayConfig = parseEnv(relayEnv, baseEnv);
  const aggregatorConfig = parseEnv(aggregatorEnv, baseEnv);
  const db = await openDevnetDatabase(relayConfig.DATABASE_URL, relayConfig.DATA_DIR, opts.schema);
  info(db.kind === "postgres" ? `Postgres schema ${db.schema} (reset)` : "embedded PGlite (reset)");
  const relay = await createRelay(relayConfig, { db });
  const aggregator = await createAggregator(aggregatorConfig, { db });
  const operators: SimulatedOperator[] = [];
  // Real proofs: one pool of proving threads for every simulated operator's workers.
  const backend =
    proofSystem === "honk" ? poolBackend("honk", { threads: opts.proveThreads ?? 1 }) : undefined;
  const cleanup = async () => {
    await Promise.allSettled(operators.map((o) => o.stop()));
    await backend?.close?.();
    await aggregator.close();
    await relay.close();
    // Only once every service has stopped, so nothing writes under the prefix again (a queue
    // closing can still write its metadata).
    const sweeper = createRedis(relayConfig.REDIS_URL);
    await deleteKeysWithPrefix(sweeper, relayConfig.REDIS_PREFIX).catch(() => {});
    sweeper.disconnect();
    await db.close();
    await redis.stop();
    await l1?.stop();
  };
  try {
    try {
      await relay.listen(opts.port, "127.0.0.1");
    } catch (err) {
      // Only a port in use falls back to a free one (said so); any other failure is the answer.
      if ((err as { code?: unknown }).code !== "EADDRINUSE") throw err;
      info(`port ${opts.port} is in use: the relay takes a free port instead`);
      await relay.listen(0, "127.0.0.1");
    }
    const addr = relay.app.server.address();
    const relayUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
    info(`relay listening at ${relayUrl} (API docs at ${relayUrl}/docs)`);
    info(`explorer at ${relayUrl}/`);
    opts.onListening?.({ relayUrl, explorerUrl: `${relayUrl}/` });
    aggregator.aggregator.start();

    const domain = domainFromEnv(relayConfig);
    const client = new RelayClient({ baseUrl: relayUrl });
    const admin = new RelayClient({ baseUrl: relayUrl, adminToken: baseEnv.ADMIN_TOKEN });
    for (let i = 0; i < opts.operators; i++) {
      const op = new SimulatedOperator({
        relayUrl,
        domain,
        seed: opts.seed,
        index: i,
        workers: opts.workers,
        simDurationsMs: opts.simDurationsMs,
        ...(backend ? { backend } : {}),
        slotDurationMs: relayConfig.SLOT_DURATION_MS,
        genesisTimeMs: relayConfig.GENESIS_TIME_MS,
      });
      if (l1) {
        await l1.fund(op.account.address, "10");
        await l1.deposit(op.account, CHAIN_DEPOSIT);
        const who = op.account.address;
        await waitFor(
          async () => BigInt((await client.getProver(who)).collateral.available) >= CHAIN_DEPOSIT,
          30_000,
          `the relay did not index operator ${who}'s deposit`,
        );
      } else {
        await admin.deposit(op.account.address, 10n ** 21n);
      }
      await op.start();
      operators.push(op);
    }
    info(`${opts.operators} operators with ${opts.workers} workers each are bidding and proving`);

    const seqOpts = {
      client,
      account: sequencer,
      domain,
      seed: opts.seed,
      txs: opts.txs,
      biddingMs: opts.biddingMs,
      deadlineMs: opts.deadlineMs,
      slotDurationMs: relayConfig.SLOT_DURATION_MS,
      genesisTimeMs: relayConfig.GENESIS_TIME_MS,
      ...(l1
        ? {
            beforeOpen: (blockNumber: number, reward: bigint) =>
              l1.fundReward(sequencer, blockNumber, reward),
          }
        : {}),
    };
    const opened = new Map<number, OpenedBlock>();
    const views = new Map<number, BlockView>();
    let next = 1;
    let nextOpenAt = Date.now();
    const target = opts.blocks;
    for (;;) {
      if (opts.signal?.aborted || fatal) break;
      if ((target === undefined || next <= target) && Date.now() >= nextOpenAt) {
        opened.set(next, await openBlockAuction(seqOpts, next));
        next += 1;
        nextOpenAt += opts.blockTimeMs;
      }
      for (const [n, o] of opened) {
        const prev = views.get(n);
        if (prev && isFinalStage(prev.stage)) continue;
        const view = await client.getBlock(n);
        if (!prev || prev.stage !== view.stage || prev.tree.proven !== view.tree.proven)
          opts.onBlock?.(view, o);
        views.set(n, view);
      }
      // Paid, or expired in open proving (nobody proved it within OPEN_PROVING_WINDOW_MS): done.
      const done = [...views.values()].filter((v) => isFinalStage(v.stage)).length;
      if (target !== undefined && done >= target) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (fatal) throw fatal;
    const blocks = [...views.values()]
      .sort((a, b) => a.number - b.number)
      .map((v) => {
        const o = opened.get(v.number)!;
        const start = v.stages.proving ?? v.stages.open_proving;
        return {
          number: v.number,
          stage: v.stage,
          winner: v.winner,
          feeBps: v.feeBps,
          blockReward: o.blockReward.toString(),
          txs: o.txs,
          jobs: v.tree.total,
          rootProof: v.rootProof,
          makespanMs:
            start !== undefined && v.stages.proven !== undefined ? v.stages.proven - start : null,
          payouts: v.payouts,
        };
      });
    if (!l1) return { proofSystem, blocks };
    // Chain mode: every settlement sent and confirmed, then the escrow and the ledger compared.
    const prisma = db.prisma;
    // Interrupted, it waits less: what is still on its way then is reported as such (the CLI
    // does not take it for a disagreement).
    const settleWaitMs = opts.signal?.aborted ? 10_000 : 60_000;
    await waitFor(
      async () =>
        (await prisma.settlement.count({ where: { status: { in: ["pending", "sent"] } } })) === 0,
      settleWaitMs,
      `settlements still unsent after ${settleWaitMs / 1000} s`,
    ).catch((err) => info(String((err as Error).message)));
    const settlements = await prisma.settlement.findMany({ orderBy: { id: "asc" } });
    const payouts = await prisma.payout.findMany({ select: { recipient: true } });
    const addresses = [
      ...new Set([
        ...operators.map((o) => o.account.address),
        sequencer.address,
        ...payouts.map((p) => p.recipient as `0x${string}`),
      ]),
    ];
    const rows: AccountReconciliation[] = await l1.reconcile(prisma, addresses);
    const chain: DevnetChainReport = {
      escrow: getAddress(l1.escrow),
      settlements: settlements.map((s) => ({
        block: s.blockNumber,
        kind: s.kind,
        status: s.status,
        txHash: s.txHash,
      })),
      reconciliation: rows.map((r) => ({
        address: r.address,
        chain: strings(r.chain),
        ledger: strings(r.ledger),
        matches: r.matches,
      })),
      // A lock or slash the index cancelled (a withdrawal took the bond first) is owed nothing.
      reconciled:
        rows.every((r) => r.matches) &&
        settlements.every((s) => s.status === "confirmed" || s.status === "cancelled"),
    };
    return { proofSystem, blocks, chain };
  } finally {
    await cleanup();
  }
}

async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  message: string,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > until) throw new Error(message);
    await new Promise((r) => setTimeout(r, 100));
  }
}
