// The world a fault scenario runs in: a private redis-server, a fresh Postgres schema reached by
// the services through a fault proxy (the machine's Postgres is shared and is never restarted: a
// "restart" is every connection cut and new ones refused for a while), relays and an aggregator
// in their own processes, worker pools in their own processes, and the harness itself as the
// sequencer and the bidders. The world records what the market promised (bids answered 202,
// results answered 200) so that the scenario's columns are measured against Postgres, not
// assumed. close() kills every process and removes the server, the schema and the proxy, even
// after a failure.
import { randomBytes } from "node:crypto";
import { type Database, openDatabase } from "@prover-boost/db";
import { RelayClient } from "@prover-boost/sdk";
import pg from "pg";
import type { LocalAccount } from "viem";
import { ADMIN_TOKEN, sequencer, TEST_DATABASE_URL } from "../../harness.ts";
import { testDomainEnv } from "../../support/domain.ts";
import { type FaultProxy, startFaultProxy } from "../../support/fault-proxy.ts";
import { type Child, Children, serviceScript, workerScript } from "./processes.ts";
import { type PrivateRedis, startPrivateRedis } from "./redis-server.ts";
import { trackSchema, untrackSchema } from "./registry.ts";
import { freePort, pollUntil } from "./util.ts";

export interface WorldOptions {
  /**
   * LEASE_MS of the services (default 8000): long enough that a busy machine's pauses never make
   * an honest worker's heartbeat late (a lapse the scenario did not cause would be counted).
   */
  leaseMs?: number;
  /** Relay processes (default 1). */
  relays?: number;
  /** Extra environment for every service. */
  env?: Record<string, string>;
}

export interface RelayProc {
  port: number;
  url: string;
  child: Child;
}

export interface WorkerProc {
  child: Child;
  prefix: string;
  /** Leases it holds now, job id -> worker id (from its leased/proven/lost/failed events). */
  inFlight: Map<string, string>;
  proven: number;
}

export const keyOf = (i: number) => `0x${i.toString(16).padStart(64, "0")}` as `0x${string}`;

export class World {
  readonly children = new Children();
  readonly relays: RelayProc[] = [];
  aggregator: Child | null = null;
  /** Bids answered 202, by bid id. */
  readonly acceptedBids = new Set<string>();
  /** Results answered 200 (the worker's "proven" event, or the harness's own), by job id. */
  readonly acceptedProofs = new Set<string>();
  /** Jobs the workers lost (lease lapsed, 409), as "<worker> <job>: <reason>", for the notes. */
  readonly lostJobs: string[] = [];
  /** Worker id prefixes of pools the scenario killed: their lapses are the operator's own. */
  readonly killedPools = new Set<string>();
  /** When the scenario's fault ended (unix ms), for "recovered after". */
  faultEndedAt = 0;
  /** When the scenario's fault began (unix ms; 0 until then), for the job stories. */
  faultStartedAt = 0;
  /** Each job's worker events ("<type>", "+" or "-" for a heartbeat's answer) and when. */
  private readonly jobEvents = new Map<string, { label: string; at: number }[]>();

  private constructor(
    readonly redis: PrivateRedis,
    readonly pgProxy: FaultProxy,
    /** A direct connection (not through the proxy) for the measurements. */
    readonly db: Database,
    readonly schema: string,
    readonly prefix: string,
    private readonly env: Record<string, string>,
    /** The relay the harness talks to (the first, unless useRelay chose another). */
    public url: string,
  ) {}

  /** Makes the harness (sequencer, bidders, admin) talk to relay `i`. */
  useRelay(i: number): void {
    this.url = this.relays[i]!.url;
  }

  get client(): RelayClient {
    return new RelayClient({ baseUrl: this.url });
  }

  get admin(): RelayClient {
    return new RelayClient({ baseUrl: this.url, adminToken: ADMIN_TOKEN });
  }

  static async start(opts: WorldOptions = {}): Promise<World> {
    const id = randomBytes(4).toString("hex");
    const schema = `t_faults_${id}`;
    const prefix = `pbfaults-${id}`;
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const redis = await startPrivateRedis();
      cleanups.push(() => redis.close());
      const pgProxy = await startFaultProxy(TEST_DATABASE_URL);
      cleanups.push(() => pgProxy.close());
      trackSchema(schema);
      cleanups.push(() => dropSchema(schema));
      // Created and migrated here, directly, before any service opens it through the proxy.
      const db = await openDatabase({ databaseUrl: TEST_DATABASE_URL, schema, poolSize: 4 });
      cleanups.push(() => db.close());
      const dbUrl = new URL(pgProxy.url);
      dbUrl.searchParams.set("schema", schema);
      const env: Record<string, string> = {
        DATABASE_URL: dbUrl.toString(),
        REDIS_URL: redis.url,
        REDIS_PREFIX: prefix,
        SEQUENCERS: sequencer.address,
        ADMIN_TOKEN,
        LEASE_MS: String(opts.leaseMs ?? 8000),
        AGGREGATOR_TICK_MS: "100",
        WITHHOLD_PENALTY_WEI: "1",
        MIN_PROVING_WINDOW_MS: "0",
        OPEN_PROVING_MIN_COLLATERAL: "0",
        INVALID_PROOF_PENALTY_WEI: "0",
        ...testDomainEnv,
        ...opts.env,
      };
      const ports = await Promise.all(Array.from({ length: opts.relays ?? 1 }, () => freePort()));
      const world = new World(
        redis,
        pgProxy,
        db,
        schema,
        prefix,
        env,
        `http://127.0.0.1:${ports[0]}`,
      );
      cleanups.push(() => world.children.stopAll());
      // The schema is already migrated, so the relays and the aggregator can start together.
      for (const port of ports) world.relays.push(world.spawnRelay(port));
      world.aggregator = world.children.spawn("aggregator", serviceScript, {
        ...env,
        FAULT_ROLE: "aggregator",
      });
      await Promise.all([
        ...world.relays.map((r) => world.children.ready(r.child, (l) => hasKey(l, "url"))),
        world.children.ready(world.aggregator, (l) => hasKey(l, "ready")),
      ]);
      world.cleanups = cleanups;
      return world;
    } catch (err) {
      await runCleanups(cleanups);
      throw err;
    }
  }

  private cleanups: (() => Promise<unknown>)[] = [];

  private spawnRelay(port: number): RelayProc {
    const child = this.children.spawn(`relay:${port}`, serviceScript, {
      ...this.env,
      FAULT_ROLE: "relay",
      FAULT_PORT: String(port),
    });
    return { port, url: `http://127.0.0.1:${port}`, child };
  }

  /** SIGKILLs relay `i`. */
  async killRelay(i = 0): Promise<void> {
    await this.relays[i]!.child.kill();
  }

  /** Starts relay `i` again on its port; resolves once it listens. */
  async restartRelay(i = 0): Promise<void> {
    const relay = this.spawnRelay(this.relays[i]!.port);
    this.relays[i] = relay;
    await this.children.ready(relay.child, (l) => hasKey(l, "url"));
  }

  /** Credits collateral to each account (through the admin endpoint). */
  async fund(accounts: LocalAccount[], amount = 10n ** 18n): Promise<void> {
    for (const a of accounts) await this.admin.deposit(a.address, amount);
  }

  /**
   * Starts a pool of `workers` simulated workers of operator `index` in its own process, against
   * `url` (default the first relay). Every result it has answered 200 counts as accepted.
   */
  async startWorkers(
    index: number,
    opts: { prefix: string; workers?: number; capacity?: number; simMs?: number; url?: string },
  ): Promise<WorkerProc> {
    const child = this.children.spawn(`workers:${opts.prefix}`, workerScript, {
      RELAY_URL: opts.url ?? this.url,
      OPERATOR_KEY: keyOf(index),
      WORKERS: String(opts.workers ?? 2),
      CAPACITY: String(opts.capacity ?? 2),
      SIM_MS: String(opts.simMs ?? 150),
      NAME_PREFIX: opts.prefix,
      WAIT_MS: "2000",
    });
    const w: WorkerProc = { child, prefix: opts.prefix, inFlight: new Map(), proven: 0 };
    child.onLine((line) => {
      const e = line as { type?: string; worker?: string; job?: { id: string }; reason?: string };
      if (!e.job || !e.worker) return;
      this.noteJobEvent(e.job.id, line as { type?: string; ok?: boolean });
      if (e.type === "lost") this.lostJobs.push(`${e.worker} ${e.job.id}: ${e.reason}`);
      if (e.type === "leased") w.inFlight.set(e.job.id, e.worker);
      else w.inFlight.delete(e.job.id);
      if (e.type === "proven") {
        w.proven++;
        this.acceptedProofs.add(e.job.id);
      }
    });
    await this.children.ready(child, (l) => (l as { type?: string }).type === "started");
    return w;
  }

  /**
   * SIGKILLs a worker pool. The leases its workers held may lapse: the operator's machine crashed
   * while holding work, which the market cannot tell from withholding, so a withholding penalty
   * on one of its workers is the operator's own (not counted as "honest operators penalized").
   */
  async killWorkers(w: WorkerProc): Promise<void> {
    this.killedPools.add(w.prefix);
    await w.child.kill();
  }

  /** Marks the end of the injected fault ("recovered after" counts from here). */
  faultEnded(): void {
    this.faultEndedAt = Date.now();
  }

  /** Marks the start of the injected fault (the job stories count from here). */
  faultStarted(): void {
    this.faultStartedAt = Date.now();
  }

  private noteJobEvent(jobId: string, e: { type?: string; ok?: boolean }): void {
    const events = this.jobEvents.get(jobId) ?? [];
    this.jobEvents.set(jobId, events);
    const ok = e.ok === undefined ? "" : e.ok ? "+" : "-";
    events.push({ label: `${e.type}${ok}`, at: Date.now() });
  }

  /**
   * What the workers said of a job (leased, heartbeats answered + or -, proven, lost), with
   * seconds from the fault's start and when it ended: for a failure's message.
   */
  jobStory(jobId: string): string {
    const s = (at: number) => ((at - this.faultStartedAt) / 1000).toFixed(2);
    const events = (this.jobEvents.get(jobId) ?? []).slice(-16);
    const told = events.map((e) => `${e.label} ${s(e.at)}`).join(", ");
    return `${jobId} (fault 0.00-${s(this.faultEndedAt)} s): ${told}`;
  }

  /** The block's stage and stage times, read straight from Postgres (never through a relay). */
  async block(n: number): Promise<{ stage: string; stages: Record<string, number> } | null> {
    const row = await this.db.prisma.block.findUnique({ where: { number: n } });
    return row ? { stage: row.stage, stages: row.stages as Record<string, number> } : null;
  }

  /** Jobs of the block recorded proven in Postgres. */
  provenJobs(n: number): Promise<number> {
    return this.db.prisma.proofJob.count({ where: { blockNumber: n, status: "proven" } });
  }

  /** Waits until the block is in one of `stages`; throws after `timeoutMs`. */
  waitStage(n: number, stages: string[], timeoutMs: number) {
    return pollUntil(
      async () => {
        const b = await this.block(n);
        return b && stages.includes(b.stage) ? b : null;
      },
      timeoutMs,
      50,
      `block ${n} did not reach ${stages.join("/")}`,
    );
  }

  /** Waits until at least `count` jobs of the block are proven. */
  waitProven(n: number, count: number, timeoutMs = 120_000) {
    return pollUntil(
      async () => (await this.provenJobs(n)) >= count,
      timeoutMs,
      20,
      `block ${n} did not get ${count} proofs`,
    );
  }

  async close(): Promise<void> {
    await runCleanups(this.cleanups);
  }
}

const hasKey = (line: unknown, key: string) =>
  typeof line === "object" && line !== null && key in line;

async function runCleanups(cleanups: (() => Promise<unknown>)[]): Promise<void> {
  // In reverse order of creation (processes first); one failing does not stop the others.
  const errors: unknown[] = [];
  for (const fn of [...cleanups].reverse()) {
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    untrackSchema(schema);
  } finally {
    await client.end();
  }
}
