// Environment configuration, parsed once with zod at start-up and passed down as options.
// Every variable here is listed with its default in the README's configuration table.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { DomainConfig, JobType, JobWeights, Pricing } from "@prover-boost/core";
import { defaultJobWeights, jobTypes, readAddress } from "@prover-boost/core";
import { getAddress } from "viem";
import { z } from "zod";
import { ConfigError } from "./parse.ts";

const int = (def: number, min = 0) =>
  z.coerce.number().int().min(min).max(Number.MAX_SAFE_INTEGER).default(def);
/** Node's longest timer (ms): a longer one fires at once, so no duration may be longer. */
export const MAX_DURATION_MS = 2_147_483_647;
const atMostDuration = z.number().max(MAX_DURATION_MS, `must be at most ${MAX_DURATION_MS} ms`);
/**
 * A duration in ms that a timer or a timeout is set to. Durations that are only compared with
 * times (a session's lifetime, a login's age, the proving window, the events' retention) are
 * plain integers.
 */
const ms = (def: number, min = 0) => int(def, min).pipe(atMostDuration);
/** A TCP port (0: any free one). */
const port = (def: number) => int(def).pipe(z.number().max(65_535));
/** A URL the service connects to, refused without repeating it (it may hold a password). */
const serviceUrl = (what: string, protocols: readonly string[]) =>
  z
    .string()
    .refine(
      (v) => URL.canParse(v) && protocols.includes(new URL(v).protocol),
      `must be a ${protocols.map((p) => `${p}//`).join(" or ")} URL (a password's reserved characters, such as # / ? @ :, percent-encoded) for ${what}`,
    );
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));
/** An address as requests read it (readAddress): a wrong EIP-55 checksum is refused. */
const address = z
  .string()
  .refine(
    (v) => readAddress(v).ok,
    "must be 0x + 40 hex digits, checksummed or in one case (a mixed-case address must carry its EIP-55 checksum)",
  );

const addressList = optionalString.transform((v, ctx) => {
  if (!v) return [] as `0x${string}`[];
  const out: `0x${string}`[] = [];
  for (const part of v
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const read = readAddress(part);
    if (!read.ok) {
      const why = read.problem === "checksum" ? "wrong EIP-55 checksum" : "not an address";
      ctx.addIssue({ code: "custom", message: `${why}: ${part}` });
      return z.NEVER;
    }
    out.push(read.address);
  }
  return out;
});

const jobWeights = optionalString.transform((v, ctx): JobWeights => {
  const weights = { ...defaultJobWeights };
  if (!v) return weights;
  for (const pair of v.split(",")) {
    const [k, w] = pair.split("=").map((s) => s.trim());
    if (!k || !jobTypes.includes(k as JobType) || !w || !/^\d+$/.test(w)) {
      ctx.addIssue({ code: "custom", message: `bad JOB_WEIGHTS entry: ${pair}` });
      return z.NEVER;
    }
    weights[k as JobType] = BigInt(w);
  }
  return weights;
});

const jobMinTier = optionalString.transform((v, ctx): Record<JobType, number> => {
  const tiers = Object.fromEntries(jobTypes.map((t) => [t, 0])) as Record<JobType, number>;
  if (!v) return tiers;
  for (const pair of v.split(",")) {
    const [k, t] = pair.split("=").map((s) => s.trim());
    if (!k || !jobTypes.includes(k as JobType) || !t || !/^\d{1,3}$/.test(t) || Number(t) > 255) {
      ctx.addIssue({ code: "custom", message: `bad JOB_MIN_TIER entry: ${pair}` });
      return z.NEVER;
    }
    tiers[k as JobType] = Number(t);
  }
  return tiers;
});

const bigintString = (def: bigint) =>
  optionalString.transform((v, ctx) => {
    if (v === undefined) return def;
    if (!/^\d{1,78}$/.test(v)) {
      ctx.addIssue({ code: "custom", message: "must be a non-negative integer" });
      return z.NEVER;
    }
    return BigInt(v);
  });

export const commonEnv = z.object({
  DATABASE_URL: optionalString.pipe(
    serviceUrl("Postgres", ["postgres:", "postgresql:"]).optional(),
  ),
  DATA_DIR: z.string().default(".prover-boost"),
  REDIS_URL: serviceUrl("Redis", ["redis:", "rediss:"]).default("redis://127.0.0.1:6379"),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default("pb"),
  EIP712_NAME: z.string().default("Aztec Rollup"),
  EIP712_VERSION: z.string().default("1"),
  CHAIN_ID: optionalString.pipe(
    z
      .string()
      .regex(/^[1-9]\d*$/, "must be a positive integer")
      .transform(Number)
      .refine(Number.isSafeInteger, "must be at most 9007199254740991")
      .optional(),
  ),
  VERIFYING_CONTRACT: optionalString.pipe(address.optional()),
  /**
   * true: run on Aztec's two-field domain (name, version) although quotes signed for Aztec then
   * replay here. Without it, CHAIN_ID and VERIFYING_CONTRACT are required.
   */
  EIP712_LEGACY_DOMAIN: z
    .enum(["true", "false", ""])
    .default("false")
    .transform((v) => v === "true"),
  AUCTION_PRICING: z.enum(["first", "second"]).default("first"),
  SLOT_DURATION_MS: ms(12_000, 1),
  GENESIS_TIME_MS: int(0),
  LEASE_MS: ms(15_000, 100),
  /** auto: native secp256k1 when it loads, else pure JS; native or js force one path. */
  SIGNATURE_BACKEND: z.enum(["auto", "native", "js"]).default("auto"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Longest wait for any one Redis reply; then the command fails (503) instead of hanging. */
  REDIS_COMMAND_TIMEOUT_MS: ms(5000, 100),
  /** Longest wait for a new Postgres connection. */
  DATABASE_CONNECT_TIMEOUT_MS: ms(5000, 100),
  /** Longest wait for one Postgres query's reply (client side; covers a stalled server). */
  DATABASE_QUERY_TIMEOUT_MS: ms(15_000, 100),
  /** Longest wait for a schema's migration lock at start (another service is migrating it). */
  DATABASE_MIGRATE_LOCK_TIMEOUT_MS: ms(60_000, 100),
  /**
   * How long a stopping process (relay, aggregator, worker agent) may take to close before it
   * exits anyway (status 1). Default 10000 (shutdownGraceMs).
   */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(100).pipe(atMostDuration).optional(),
  /** The older name of SHUTDOWN_GRACE_MS, still read when SHUTDOWN_GRACE_MS is not set. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).pipe(atMostDuration).optional(),
  /**
   * ledger: collateral is credited by the admin endpoint and rewards are booked in Postgres
   * only. chain: collateral and rewards sit in the escrow contract at ESCROW_ADDRESS on the L1
   * at L1_RPC_URL; the relay indexes its events, the aggregator settles on it.
   */
  COLLATERAL: z.enum(["ledger", "chain"]).default("ledger"),
  /** http or https only: the relay and the aggregator speak JSON-RPC over HTTP (viem's http). */
  L1_RPC_URL: optionalString.pipe(
    z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
  ),
  ESCROW_ADDRESS: optionalString
    .pipe(address.optional())
    .transform((v) => (v === undefined ? undefined : getAddress(v))),
  /** An escrow event counts once its block has this many confirmations (1 = the head block). */
  L1_CONFIRMATIONS: int(1, 1),
  /**
   * chain: most L1 blocks asked for in one eth_getLogs call (the indexer's reads, the settler's
   * look for a settlement already on the chain).
   */
  L1_LOG_RANGE: int(1000, 1),
  /** chain: the first L1 block to index (the escrow's deployment block). */
  L1_START_BLOCK: int(0),
  /**
   * chain: the deepest reorg the indexer undoes by itself; an indexed log gone from deeper down
   * means the L1 lost its state, and bids are refused instead. The settler looks for a
   * settlement's transaction from this far below the head it first saw.
   */
  L1_MAX_REORG_DEPTH: int(64, 1),
});

/**
 * Whom the relay believes about the client's address (X-Forwarded-For, X-Forwarded-Proto/Host),
 * which the per-IP rate limits and event-stream caps count by: false (the default) trusts no
 * one and uses the TCP peer; true trusts every hop (only behind a proxy that overwrites the
 * header); a number trusts that many hops; otherwise a comma-separated list of proxy addresses
 * or CIDR ranges (e.g. "10.0.0.0/8,127.0.0.1").
 */
const trustProxy = optionalString.transform((v, ctx): boolean | number | string[] => {
  if (v === undefined || v === "false") return false;
  if (v === "true") return true;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (hops < 1 || hops > 32) {
      ctx.addIssue({ code: "custom", message: "a hop count must be 1 to 32" });
      return z.NEVER;
    }
    return hops;
  }
  const parts = v
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const ipOrCidr = (p: string) => {
    const [ip = "", bits, ...rest] = p.split("/");
    const family = isIP(ip);
    if (family === 0 || rest.length > 0) return false;
    if (bits === undefined) return true;
    return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
  };
  const bad = parts.find((p) => !ipOrCidr(p));
  if (parts.length === 0 || bad !== undefined) {
    ctx.addIssue({
      code: "custom",
      message: `must be true, false, a hop count or a list of addresses/CIDRs${bad ? `: ${bad}` : ""}`,
    });
    return z.NEVER;
  }
  return parts;
});

export const relayEnv = commonEnv.extend({
  PORT: port(8080),
  HOST: z.string().default("127.0.0.1"),
  /**
   * Connections the kernel may hold for the relay before it accepts them (listen backlog; the
   * kernel caps it at net.core.somaxconn). Too short a queue drops the connections of a burst,
   * and each dropped one waits a second or more for its SYN to be sent again.
   */
  LISTEN_BACKLOG: int(4096, 1).pipe(z.number().max(65_535)),
  TRUST_PROXY: trustProxy,
  SEQUENCERS: addressList,
  ADMIN_TOKEN: optionalString,
  BODY_LIMIT_BYTES: int(1_048_576, 1024),
  /** Time a client has to send a whole request (headers and body); then 408 REQUEST_TIMEOUT. */
  REQUEST_TIMEOUT_MS: ms(60_000, 100),
  SESSION_TTL_MS: int(3_600_000, 1000),
  /** Least time an auction must leave between biddingClosesAt and proofDeadline. */
  MIN_PROVING_WINDOW_MS: int(60_000),
  LOGIN_MAX_AGE_MS: int(300_000, 1000),
  RATE_LIMIT_WINDOW_MS: ms(1000, 1),
  /**
   * Event-loop delay (ms, the mean over the last second, a delay still under way included) above
   * which the relay refuses a share of new leases with 503 UNAVAILABLE and Retry-After: half of
   * them just over it, up to 95% at twice it (heartbeats and results are never refused). A relay
   * whose worst delay of the last second is past it does not count as present for lapses. 0 =
   * neither.
   */
  OVERLOAD_LAG_MS: ms(200),
  /**
   * Lease attempts (a look through the queues, the grant and its answer) one relay process runs
   * at once; the rest of its long polls wait their turn. A lease's clock starts at its grant, so
   * a thousand attempts at once would hold each granted answer behind all the others.
   */
  LEASE_CONCURRENCY: int(64, 1),
  /**
   * The longest a worker may hold a lease, from its grant, however it heartbeats (at least
   * LEASE_MS): then heartbeats are refused and the lease runs out as a lapse; 0 = no limit.
   */
  LEASE_MAX_MS: ms(3_600_000),
  /** Requests per window per client IP; 0 disables rate limiting. */
  RATE_LIMIT_PER_IP: int(2000),
  /** Bids per window per prover address; 0 disables the per-prover limit. */
  RATE_LIMIT_PER_PROVER: int(100),
  /** Worker sign-ins per SIGNIN_RATE_LIMIT_WINDOW_MS per operator (recovered signer); 0 = none. */
  SIGNIN_RATE_LIMIT_PER_OPERATOR: int(60),
  SIGNIN_RATE_LIMIT_WINDOW_MS: ms(60_000, 1),
  /** Least hardware tier per job type, e.g. "block_root=1,single_tx_block_root=1"; others 0. */
  JOB_MIN_TIER: jobMinTier,
  /** Collateral taken from an operator each time one of its workers lets a lease lapse. */
  WITHHOLD_PENALTY_WEI: bigintString(0n),
  /**
   * Collateral taken from an operator (burned, up to what it has free) for each proof of its
   * workers that does not verify.
   */
  INVALID_PROOF_PENALTY_WEI: bigintString(10n ** 15n),
  /**
   * Free collateral an operator must hold for its workers to lease jobs of blocks in open
   * proving (anyone may prove those, so spoiling them must cost something).
   */
  OPEN_PROVING_MIN_COLLATERAL: bigintString(10n ** 16n),
  /** Retryable fails of one job by one worker, after which that worker is not offered it again. */
  MAX_RETRYABLE_FAILS_PER_WORKER: int(3, 1),
  /**
   * Failed attempts of one job (penalized lapses, retryable fails, invalid proofs) by all of one
   * operator's workers together, after which none of them is offered it (worker ids are free).
   */
  MAX_JOB_FAILS_PER_OPERATOR: int(5, 1),
  /**
   * Failed attempts of one job by everyone (penalized lapses, retryable fails, invalid proofs);
   * at this many the job is failed for good and its block takes the deadline path.
   */
  MAX_JOB_ATTEMPTS: int(5, 1),
  /**
   * priority: the most urgent ready job first. affinity: the same, but among equally urgent
   * ready jobs a parent of a node the asking worker proved goes first.
   */
  SCHEDULING: z.enum(["priority", "affinity"]).default("priority"),
  /**
   * The proof system of the auctions this relay opens (recorded per auction, so a block is
   * always verified with its own): sim (simulated, the fast default) or honk (UltraHonk).
   */
  PROOF_SYSTEM: z.enum(["sim", "honk"]).default("sim"),
  /** Worker threads verifying real (honk) proofs, off the relay's event loop. */
  PROOF_VERIFY_THREADS: int(1, 1),
  /**
   * A real proof's result with no verdict this long after it arrived (a verifier stuck, or every
   * verifying thread busy) is answered 503 UNAVAILABLE: nothing credited or charged, the lease
   * kept from the result's arrival. A verification running this long on its thread (a new
   * thread's bb.js start, about a second, counted) ends the thread: keep it well above that.
   */
  PROOF_VERIFY_TIMEOUT_MS: ms(10_000, 1000),
  /**
   * affinity: how long a parent made ready by a worker's proof is reserved for the workers that
   * proved its children (ended early by the first of them to ask for work); 0 = no holds.
   */
  AFFINITY_HOLD_MS: ms(250).pipe(z.number().max(10_000)),
  /** Most bids written to Postgres in one group commit. */
  BID_BATCH_MAX: int(256, 1),
  /** Bid write lanes, split by prover; one group commit in flight per lane (one connection each). */
  BID_WRITES_IN_FLIGHT: int(2, 1),
  /**
   * Least time between the starts of two bid writes of one lane, ms: under load, bids gather for
   * this long into one write (fewer, larger commits); a bid reaching an idle lane goes at once.
   */
  BID_WRITE_INTERVAL_MS: ms(10).pipe(z.number().max(1000)),
  /** Server-sent event streams open at once per client IP (per relay process); 0 = no cap. */
  SSE_STREAMS_PER_IP: int(8),
  /** Server-sent event streams open at once in total (per relay process); 0 = no cap. */
  SSE_STREAMS_MAX: int(256),
  /** A comment line is sent on an idle event stream this often, so proxies keep it open. */
  SSE_KEEPALIVE_MS: ms(15_000, 100),
  /**
   * A client of an event stream that leaves more than this many bytes unread is dropped (it
   * resumes by event id); 0 = no bound.
   */
  SSE_MAX_BUFFER_BYTES: int(1_048_576),
  /** The market's event log (GET /v1/events) keeps events this long; resume works within it. */
  EVENTS_RETENTION_MS: int(3_600_000, 1000),
  /** chain: how often the escrow indexer polls the L1 for new blocks. */
  L1_POLL_MS: ms(1000, 10),
  /** chain: bids are refused (503 L1_UNAVAILABLE) when the indexer has not synced for this long. */
  L1_STALE_MS: ms(10_000, 100),
});

export const aggregatorEnv = commonEnv.extend({
  /** quote: Aztec's first design (fee from the winning quote); shares: the multi-prover booster. */
  REWARD_MODEL: z.enum(["quote", "shares"]).default("quote"),
  /** shares model: the sequencer's cut of the block reward, basis points. */
  SEQUENCER_BPS: int(5000).pipe(z.number().max(10_000)),
  BOOSTER_INCREMENT: bigintString(125_000n),
  BOOSTER_MAX_SCORE: bigintString(15_000_000n),
  BOOSTER_A: bigintString(1000n),
  BOOSTER_K: bigintString(1_000_000n),
  BOOSTER_MINIMUM: bigintString(100_000n),
  BOOSTER_DECAY: bigintString(100_000n),
  SUBMITTER_BPS: int(0).pipe(z.number().max(10_000)),
  SUBMITTER_ADDRESS: optionalString
    .pipe(address.optional())
    .transform((v) => (v === undefined ? undefined : getAddress(v))),
  SLASH_TO_SEQUENCER_BPS: int(5000).pipe(z.number().max(10_000)),
  AGGREGATOR_TICK_MS: ms(250, 10),
  /** Open proving: re-issues of one failed job made at once; later ones wait REISSUE_BACKOFF_MS. */
  MAX_JOB_REISSUES: int(3, 0),
  /** Open proving: past MAX_JOB_REISSUES, the least time between two re-issues of one job. */
  REISSUE_BACKOFF_MS: ms(60_000, 1),
  /**
   * Open proving: a block nobody proves within this long of its move to open proving (plus the
   * outages credited to it) expires and its reward goes back to the sequencer; 0: never.
   */
  OPEN_PROVING_WINDOW_MS: int(86_400_000),
  JOB_WEIGHTS: jobWeights,
  /** chain: the settler's private key (0x + 64 hex digits); or SETTLER_KEY_FILE. */
  SETTLER_KEY: optionalString.pipe(
    z
      .string()
      .regex(/^0x[0-9a-fA-F]{64}$/, "must be 0x followed by 64 hex digits")
      .optional(),
  ),
  /** chain: a file holding the settler's private key. */
  SETTLER_KEY_FILE: optionalString,
  /** chain: first wait before retrying a settlement transaction after a transient error. */
  SETTLER_RETRY_BASE_MS: ms(500, 1),
  /** chain: longest wait between two retries of a settlement transaction. */
  SETTLER_RETRY_MAX_MS: ms(30_000, 1),
  /**
   * chain: a settlement transaction still pending this long is replaced by the same call at the
   * same nonce with fees raised (at least 12.5%, and to the node's current estimate).
   */
  SETTLER_FEE_BUMP_AFTER_MS: ms(180_000, 1000),
  /**
   * chain: the most a replacement settlement transaction pays per gas (maxFeePerGas and tip, or
   * gasPrice), wei; a bump that would need more is not sent. 0 = no limit. Default 1,000 gwei.
   */
  SETTLER_MAX_FEE_PER_GAS_WEI: bigintString(10n ** 12n),
  /** Prometheus endpoint (GET /metrics) of the aggregator; 0 disables it. */
  METRICS_PORT: port(9464),
  /** Address the metrics endpoint binds to. */
  METRICS_HOST: z.string().default("127.0.0.1"),
});

export type CommonEnv = z.infer<typeof commonEnv>;
export type RelayEnv = z.infer<typeof relayEnv>;
export type AggregatorEnv = z.infer<typeof aggregatorEnv>;

/** `url` with its password, if any, masked: for logs and messages. */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return "(a URL that does not parse)";
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}

export function domainFromEnv(env: CommonEnv): DomainConfig {
  return {
    name: env.EIP712_NAME,
    version: env.EIP712_VERSION,
    ...(env.CHAIN_ID !== undefined ? { chainId: BigInt(env.CHAIN_ID) } : {}),
    ...(env.VERIFYING_CONTRACT !== undefined
      ? { verifyingContract: getAddress(env.VERIFYING_CONTRACT) }
      : {}),
  };
}

/**
 * The domain a relay or aggregator signs and verifies under. It must bind this deployment
 * (CHAIN_ID and VERIFYING_CONTRACT): on Aztec's two-field domain every quote a prover ever signed
 * for Aztec is a valid bid here. That domain is allowed only with EIP712_LEGACY_DOMAIN=true, and
 * `warn` is told so.
 */
export function boundDomainFromEnv(env: CommonEnv, warn: (message: string) => void): DomainConfig {
  const domain = domainFromEnv(env);
  if (domain.chainId === undefined || domain.verifyingContract === undefined) {
    if (!env.EIP712_LEGACY_DOMAIN) {
      throw new ConfigError(
        "invalid configuration:\n  CHAIN_ID and VERIFYING_CONTRACT are required: they bind " +
          "signatures to this deployment (set EIP712_LEGACY_DOMAIN=true to accept Aztec's " +
          "two-field domain, on which quotes signed for Aztec replay here)",
      );
    }
    warn(
      "EIP712_LEGACY_DOMAIN=true: signing on Aztec's two-field domain; quotes and logins signed " +
        "for Aztec or for any other relay on this domain replay here",
    );
  }
  return domain;
}

/**
 * The settler's key in chain mode: SETTLER_KEY, or the first line of SETTLER_KEY_FILE (never
 * both). Undefined in ledger mode; a ConfigError when chain mode has none or a bad one.
 */
export function settlerKeyFromEnv(env: AggregatorEnv): `0x${string}` | undefined {
  if (env.COLLATERAL !== "chain") return undefined;
  if (env.SETTLER_KEY !== undefined && env.SETTLER_KEY_FILE !== undefined) {
    throw new ConfigError(
      "invalid configuration:\n  set SETTLER_KEY or SETTLER_KEY_FILE, not both",
    );
  }
  let key = env.SETTLER_KEY;
  if (env.SETTLER_KEY_FILE !== undefined) {
    let text: string;
    try {
      text = readFileSync(env.SETTLER_KEY_FILE, "utf8");
    } catch (err) {
      throw new ConfigError("invalid configuration:\n  SETTLER_KEY_FILE cannot be read", {
        cause: err,
      });
    }
    key = text.trim().split(/\r?\n/)[0]?.trim();
    if (!key || !/^0x[0-9a-fA-F]{64}$/.test(key)) {
      throw new ConfigError(
        "invalid configuration:\n  SETTLER_KEY_FILE must hold 0x followed by 64 hex digits",
      );
    }
  }
  if (key === undefined) {
    throw new ConfigError(
      "invalid configuration:\n  COLLATERAL=chain needs SETTLER_KEY or SETTLER_KEY_FILE",
    );
  }
  return key as `0x${string}`;
}

export {
  type MetricsServer,
  type MetricsSource,
  serveMetrics,
  weiToGwei,
} from "./metrics-server.ts";
export { ConfigError, fileVariables, parseEnv, resolveFileVariables } from "./parse.ts";
export {
  closeOnSignals,
  DEFAULT_SHUTDOWN_GRACE_MS,
  parseEnvOrExit,
  shutdownGraceMs,
} from "./service.ts";
export type { Pricing };
