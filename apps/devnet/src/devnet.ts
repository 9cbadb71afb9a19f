// The devnet: relay, aggregator, a simulated sequencer and K simulated operators with W workers
// each, in one process on embedded defaults (PGlite, a private redis-server) or on the
// Postgres and Redis you point it at. It runs until N blocks are paid, or until stopped.
import { randomBytes } from "node:crypto";
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, domainFromEnv, parseEnv, relayEnv } from "@prover-boost/config";
import { createRedis, deleteKeysWithPrefix } from "@prover-boost/queue";
import { createRelay } from "@prover-boost/relay";
import { type BlockView, RelayClient } from "@prover-boost/sdk";
import { poolBackend } from "@prover-boost/worker";
import { getAddress, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { openDevnetDatabase } from "./database.ts";
import { SimulatedOperator } from "./operators.ts";
import { provideRedis } from "./redis-server.ts";
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
  onBlock?: (view: BlockView, opened: OpenedBlock) => void;
  onInfo?: (message: string) => void;
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

const terminal = new Set(["paid"]);

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

export interface DevnetReport {
  proofSystem: "sim" | "honk";
  blocks: DevnetBlockReport[];
}

export async function runDevnet(opts: DevnetOptions): Promise<DevnetReport> {
  const proofSystem = opts.proofs ?? "sim";
  const info = opts.onInfo ?? (() => {});
  const redis = await provideRedis(opts.env.REDIS_URL);
  info(redis.owned ? `started redis-server at ${redis.url}` : `using Redis at ${redis.url}`);
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
  };
  try {
    try {
      await relay.app.listen({ port: opts.port, host: "127.0.0.1" });
    } catch {
      await relay.app.listen({ port: 0, host: "127.0.0.1" });
    }
    const addr = relay.app.server.address();
    const relayUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
    info(`relay listening at ${relayUrl} (API docs at ${relayUrl}/docs)`);
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
      await admin.deposit(op.account.address, 10n ** 21n);
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
    };
    const opened = new Map<number, OpenedBlock>();
    const views = new Map<number, BlockView>();
    let next = 1;
    let nextOpenAt = Date.now();
    const target = opts.blocks;
    for (;;) {
      if (opts.signal?.aborted) break;
      if ((target === undefined || next <= target) && Date.now() >= nextOpenAt) {
        opened.set(next, await openBlockAuction(seqOpts, next));
        next += 1;
        nextOpenAt += opts.blockTimeMs;
      }
      for (const [n, o] of opened) {
        const prev = views.get(n);
        if (prev && terminal.has(prev.stage)) continue;
        const view = await client.getBlock(n);
        if (!prev || prev.stage !== view.stage || prev.tree.proven !== view.tree.proven)
          opts.onBlock?.(view, o);
        views.set(n, view);
      }
      const paid = [...views.values()].filter((v) => v.stage === "paid").length;
      if (target !== undefined && paid >= target) break;
      await new Promise((r) => setTimeout(r, 100));
    }
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
    return { proofSystem, blocks };
  } finally {
    await cleanup();
  }
}
