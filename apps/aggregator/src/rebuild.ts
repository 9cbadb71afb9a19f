// Surviving the loss of the proof fabric. Redis holds each block's tree of jobs; Postgres holds
// the tree's nodes and every accepted proof. If Redis loses its data (restarted without it,
// flushed, keys evicted) or part of it, nothing else would ever put the jobs back: the winner's
// workers would find no work, miss the deadline and be slashed for our fault. So each tick this
// keeper compares, for every block being proven, how many jobs its tree holds in BullMQ with how
// many were put there (Block.fabricJobs, or the whole tree); fewer means a loss, and the tree is
// rebuilt from Postgres: proven nodes stay proven (their proofs travel in their parents' job
// data), only unproven nodes become jobs again.
//
// Nobody is slashed for time the fabric was unavailable. The proof deadline is extended by every
// outage a block sees while it waits for or is being proven (Block.fabricDownMs), and while an
// outage is open (Block.fabricDownSince) the block is not slashed at all. An outage is either
// Redis unreachable (a PING unanswered within PROBE_TIMEOUT_MS, checked by the tick and by a
// watch timer of its own, so a tick stuck on Redis cannot hide one), a lost tree, counted from
// the last time the tree was seen whole (or the last proof recorded, after a restart) until the
// rebuild, or, for a block being proven by its winner or in open proving (whose window it
// lengthens alike), no relay present (deadlines.ts says what present means): counted from when
// a relay was last seen able to serve (not before the block was last changed, nor before the
// end of the last outage credited to it, Block.fabricCreditedTo) until one is
// present again. An open outage of a block being proven closes
// only when Redis answers, its tree is whole and a relay is present. A gap with no relay that
// this process never saw (stopped throughout it: the whole deployment down, the relays back
// first) is credited when it is back, from the log the relay that ended the gap keeps in Redis
// (creditGaps; packages/queue's presence.ts), before any deadline is judged.
import {
  nodePriority,
  PROVING_STAGES,
  ProverBoostError,
  planTree,
  rootJobTypes,
  STAGE,
} from "@prover-boost/core";
import { recordProof } from "@prover-boost/db";
import { redisNow } from "@prover-boost/queue";
import pTimeout from "p-timeout";
import type { AggregatorContext } from "./context.ts";
import { type RelaySighting, relaysFreshMs, sightRelays } from "./relays.ts";

type PresenceGaps = RelaySighting["gaps"];

/** How long a PING (or a block's job count) may take before the fabric counts as down. */
export const PROBE_TIMEOUT_MS = 1000;

/** A probe of the fabric got no answer in time (it counts as down; retried on the next probe). */
export class ProbeTimeout extends ProverBoostError {
  override readonly name = "ProbeTimeout";
  constructor(message: string) {
    super("PROBE_TIMEOUT", message, { retryable: true });
  }
}

const within = <T>(p: Promise<T>, ms: number): Promise<T> =>
  pTimeout(p, { milliseconds: ms, message: new ProbeTimeout(`no answer within ${ms} ms`) });

/** Resolves once `redis` is connected and ready, or after `ms` (whichever is first). */
function readyWithin(redis: AggregatorContext["fabric"]["redis"], ms: number): Promise<void> {
  if (redis.status === "ready" || redis.status === "end") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off("ready", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once("ready", done);
  });
}

/** What the keeper reads of a block being proven. */
export interface KeptBlock {
  number: number;
  stage: string;
  jobsTotal: number;
  fabricJobs: number | null;
  fabricDownSince: bigint | null;
}

/**
 * The stages in which a block has a clock running, an end for an absent relay to hold up: its
 * winner's deadline, and the window of open proving (OPEN_PROVING_WINDOW_MS; none with 0).
 */
const clockedStages = (ctx: AggregatorContext): string[] =>
  ctx.config.openProvingWindowMs > 0 ? [STAGE.proving, STAGE.open_proving] : [STAGE.proving];

const clockRuns = (ctx: AggregatorContext, stage: string): boolean =>
  clockedStages(ctx).includes(stage);

export class FabricKeeper {
  private up = true;
  private lastUpAt: number | null = null;
  /** When the fabric last answered a probe (monotonic clock), and how long an answer counts. */
  private answeredAt = Number.NEGATIVE_INFINITY;
  private freshMs = 0;
  /** A PING still unanswered: reused, so a hung link does not pile up commands. */
  private ping: Promise<boolean> | null = null;
  /**
   * Per block being proven: how many of its jobs BullMQ had completed at the last run (read with
   * the tree's size, so the reconciler needs no second count).
   */
  readonly completed = new Map<number, number>();
  /** Per block being proven: when its tree was last seen whole by this process. */
  private readonly seenWhole = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  /** The watch's probe in flight (awaited on stop). */
  private probing: Promise<unknown> | null = null;
  /** Stopped: a probe failing because this process is closing its connections is no outage. */
  private stopped = false;
  /** Whether a relay was present at the last look (for logging the changes only). */
  private relaysPresent = true;
  /** When this process first found Redis without any relay's record, while it still is. */
  private noRecordSince: number | null = null;
  /** The logged gaps with no relay (creditGaps) this process has credited. */
  private readonly gapsCredited = new Set<string>();

  constructor(private readonly ctx: AggregatorContext) {}

  /** Whether the fabric answered the last probe. */
  get isUp(): boolean {
    return this.up;
  }

  /** Probes the fabric every `everyMs` besides the tick's own probe (see the header). */
  watch(everyMs: number): void {
    if (this.timer) return;
    this.freshMs = everyMs;
    let failing = false;
    this.timer = setInterval(() => {
      // One probe at a time: recording an outage may wait on a block's row lock.
      if (this.probing) return;
      this.probing = this.probe()
        .then(
          () => {
            failing = false;
          },
          (err) => {
            // Postgres is down too: said once, not at every probe.
            if (!failing) this.ctx.log.error({ err }, "could not record a fabric outage");
            failing = true;
          },
        )
        .finally(() => {
          this.probing = null;
        });
    }, everyMs);
    this.timer.unref();
  }

  /** Stops the watch (before the fabric's connections close) and waits for its last probe. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.probing;
  }

  /** One PING; on no answer, opens an outage on every block whose deadline runs. */
  async probe(): Promise<boolean> {
    const { fabric } = this.ctx;
    let ok = false;
    // A process that has had no answer yet may still be making its first connection: that is no
    // outage (one found before any answer is dated from each block's last change, see down()).
    if (this.lastUpAt === null) await readyWithin(fabric.redis, PROBE_TIMEOUT_MS);
    if (fabric.redis.status === "ready") {
      this.ping ??= fabric
        .ping()
        .catch(() => false)
        .finally(() => {
          this.ping = null;
        });
      ok = await within(this.ping, PROBE_TIMEOUT_MS).catch(() => false);
    }
    if (ok) {
      this.answeredAt = performance.now();
      this.up = true;
      this.lastUpAt = this.ctx.now();
      return true;
    }
    if (!this.stopped) await this.down();
    return false;
  }

  /** Opens an outage on every block whose deadline runs (waiting for or being proven). */
  private async down(): Promise<void> {
    if (this.up) this.ctx.log.warn({}, "proof fabric (Redis) unreachable: no slashing until back");
    this.up = false;
    // From the last answer, but not before the block's last change (a proof recorded after it
    // shows the fabric worked then; a block committed during the outage starts its own). A
    // process that has had no answer yet (started during the outage, which may have begun while
    // it was stopped) dates it from the block's last change alone, as a lost tree is dated after
    // a restart: the winner is not charged for time the fabric may already have been down.
    const since = BigInt(this.lastUpAt ?? 0);
    await this.ctx.prisma.$executeRaw`
      UPDATE "Block" SET "fabricDownSince" = GREATEST(${since}::bigint, "updatedAt", COALESCE("fabricCreditedTo", 0))
      WHERE stage IN (${STAGE.committed}, ${STAGE.unclaimed}, ${STAGE.proving}, ${STAGE.open_proving})
        AND "fabricDownSince" IS NULL`;
  }

  /**
   * The tick's duty: probe, then check every block being proven and rebuild any tree Redis lost;
   * close the outages of blocks whose trees are whole. Returns whether the fabric is usable (the
   * tick's other duties need it).
   */
  async run(
    /** The blocks being proven, read by the caller this tick (tick-view.ts); read here if not. */
    known?: readonly KeptBlock[],
  ): Promise<boolean> {
    const { ctx } = this;
    // The watch probes on its own timer: an answer it had within its period stands for this
    // tick's too. Probing again on every tick doubled the idle PINGs and made their rate follow
    // how late the tick's timer fired.
    const fresh = this.up && performance.now() - this.answeredAt < this.freshMs;
    if (!fresh && !(await this.probe())) return false;
    const blocks =
      known ??
      (await ctx.prisma.block.findMany({
        where: { stage: { in: [...PROVING_STAGES] } },
        select: {
          number: true,
          stage: true,
          jobsTotal: true,
          fabricJobs: true,
          fabricDownSince: true,
        },
        orderBy: { number: "asc" },
      }));
    const clocked = (b: { stage: string }) => clockRuns(ctx, b.stage);
    let relays: { present: boolean; seenAt: number; gaps: PresenceGaps } | null = null;
    if (blocks.some(clocked)) {
      try {
        relays = await within(this.sightRelays(), PROBE_TIMEOUT_MS);
      } catch (err) {
        if (!(err instanceof ProbeTimeout)) throw err;
        await this.down();
        return false;
      }
      await this.creditGaps(relays.gaps);
      if (!relays.present) await this.noRelay(relays.seenAt);
      else if (!this.relaysPresent) ctx.log.info({}, "a relay is present again");
      this.relaysPresent = relays.present;
    }
    const active = new Set(blocks.map((b) => b.number));
    for (const n of this.seenWhole.keys()) if (!active.has(n)) this.seenWhole.delete(n);
    this.completed.clear();
    for (const block of blocks) {
      let jobs: number;
      try {
        const counts = await within(ctx.fabric.treeCounts(block.number), PROBE_TIMEOUT_MS);
        jobs = counts.jobs;
        this.completed.set(block.number, counts.completed);
      } catch (err) {
        if (!(err instanceof ProbeTimeout)) throw err;
        await this.down();
        return false;
      }
      const absent = clocked(block) && relays?.present === false;
      if (jobs >= (block.fabricJobs ?? block.jobsTotal)) {
        this.seenWhole.set(block.number, ctx.now());
        if (block.fabricDownSince !== null && !absent) await this.closeOutage(block.number);
        continue;
      }
      await this.rebuild(block.number, jobs, absent);
      // Its counts are from before the rebuild: the reconciler skips it this tick.
      this.completed.delete(block.number);
    }
    return true;
  }

  /**
   * Whether a relay is present, when one was last seen able to serve, and the gaps with none that
   * relays logged (relays.ts).
   */
  private async sightRelays(): Promise<{ present: boolean; seenAt: number; gaps: PresenceGaps }> {
    const { ctx } = this;
    const sighting = await sightRelays(ctx);
    if (sighting.seenAt !== null) {
      this.noRecordSince = null;
      return { ...sighting, seenAt: sighting.seenAt };
    }
    // No record at all: Redis lost its data (a lost tree is credited by its rebuild). A relay
    // that is up records itself again at its next refresh, so the loss counts as a sighting when
    // this process first found it, and no relay recorded within the bound after it is an outage
    // from then.
    this.noRecordSince ??= ctx.now();
    const present = ctx.now() - this.noRecordSince <= relaysFreshMs(ctx);
    return { present, seenAt: this.noRecordSince, gaps: sighting.gaps };
  }

  /**
   * Credits each gap with no relay able to serve that a relay logged as it ended it (presence.ts)
   * to every block whose clock ran through it: the part after the block's clock started (its
   * move to its stage), after the latest outage already credited to it (`fabricCreditedTo`: a
   * gap this process saw live was credited when it closed, at or after the gap's end), and
   * before an outage still open on it. So a gap is counted once, whether the keeper saw it live,
   * finds it after a restart (stopped throughout it, it never opened an outage for it), or runs
   * twice; applied oldest first, once per process.
   */
  private async creditGaps(gaps: PresenceGaps): Promise<void> {
    const stages = clockedStages(this.ctx);
    for (const { from, to, id } of gaps) {
      if (this.gapsCredited.has(id)) continue;
      const [lo, hi] = [BigInt(from), BigInt(to)];
      const credited = await this.ctx.prisma.$executeRaw`
        UPDATE "Block" SET
          "fabricDownMs" = "fabricDownMs" + LEAST(${hi}::bigint, COALESCE("fabricDownSince", ${hi}::bigint))
            - GREATEST(${lo}::bigint, COALESCE(("stages" ->> "stage")::bigint, 0), COALESCE("fabricCreditedTo", 0)),
          "fabricCreditedTo" = LEAST(${hi}::bigint, COALESCE("fabricDownSince", ${hi}::bigint))
        WHERE stage = ANY(${stages}::text[])
          AND LEAST(${hi}::bigint, COALESCE("fabricDownSince", ${hi}::bigint))
            > GREATEST(${lo}::bigint, COALESCE(("stages" ->> "stage")::bigint, 0), COALESCE("fabricCreditedTo", 0))`;
      this.gapsCredited.add(id);
      if (credited > 0) {
        this.ctx.log.warn(
          { from, to, blocks: credited },
          "a gap with no relay able to serve, unseen by this process: credited to the blocks it held up",
        );
      }
    }
  }

  /**
   * No relay is present: opens an outage on every block its winner is proving, and on every block
   * in open proving while its window is on (nobody can prove it either), from when a relay was
   * last seen able to serve, but not before the block's last change (a block that moved on since
   * then starts its own).
   */
  private async noRelay(seenAt: number): Promise<void> {
    if (this.relaysPresent) {
      this.ctx.log.warn(
        {},
        "no relay present: no proof deadline or open-proving window runs out until one is back",
      );
    }
    await this.ctx.prisma.$executeRaw`
      UPDATE "Block" SET "fabricDownSince" = GREATEST(${BigInt(seenAt)}::bigint, "updatedAt", COALESCE("fabricCreditedTo", 0))
      WHERE stage = ANY(${clockedStages(this.ctx)}::text[]) AND "fabricDownSince" IS NULL`;
  }

  /** Credits an open outage of a block whose tree is whole (once, even with two aggregators). */
  private async closeOutage(blockNumber: number): Promise<void> {
    const now = BigInt(this.ctx.now());
    const closed = await this.ctx.prisma.$executeRaw`
      UPDATE "Block" SET "fabricDownMs" = "fabricDownMs" +
          GREATEST(0, ${now}::bigint - GREATEST("fabricDownSince", COALESCE("fabricCreditedTo", 0))),
        "fabricDownSince" = NULL, "fabricCreditedTo" = GREATEST(COALESCE("fabricCreditedTo", 0), ${now}::bigint)
      WHERE number = ${blockNumber} AND "fabricDownSince" IS NOT NULL`;
    if (closed > 0) this.ctx.log.info({ blockNumber }, "fabric back: proof deadline extended");
  }

  /** When the fabric last showed it worked for a block this process has not seen whole. */
  private async lastEvidence(blockNumber: number): Promise<number> {
    const [block, job] = await Promise.all([
      this.ctx.prisma.block.findUniqueOrThrow({ where: { number: blockNumber } }),
      this.ctx.prisma.proofJob.aggregate({ where: { blockNumber }, _max: { provenAt: true } }),
    ]);
    const stages = block.stages as Record<string, number>;
    const times = [stages.proving, stages.open_proving, Number(job._max.provenAt ?? 0)];
    return Math.max(0, ...times.filter((t): t is number => typeof t === "number"));
  }

  /**
   * Rebuilds a block's tree from Postgres, under the block's row lock: a second aggregator (or
   * a second tick) waits, finds the tree whole and does nothing. Proofs that only BullMQ still
   * holds (completed, not yet recorded) are recorded first, then what is left of the tree is
   * removed and the unproven nodes are added again, and the outage is credited to the block.
   * `relaysAbsent`: no relay is present (a block being proven by its winner, or in open proving
   * with a window), so its outage is credited up to now and stays open from now.
   */
  async rebuild(blockNumber: number, jobsSeen: number, relaysAbsent = false): Promise<void> {
    const { ctx } = this;
    const lostSince = this.seenWhole.get(blockNumber) ?? (await this.lastEvidence(blockNumber));
    const outcome = await ctx.prisma.$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT number FROM "Block" WHERE number = ${blockNumber} FOR UPDATE`;
        const block = await tx.block.findUniqueOrThrow({
          where: { number: blockNumber },
          include: { auction: { select: { txs: true, txCount: true, proofSystem: true } } },
        });
        if (!(PROVING_STAGES as readonly string[]).includes(block.stage)) return null;
        const expected = block.fabricJobs ?? block.jobsTotal;
        if ((await ctx.fabric.treeJobs(blockNumber)) >= expected) return null;
        const before = await tx.proofJob.findMany({
          where: { blockNumber, status: { not: "proven" } },
          select: { id: true, type: true },
        });
        const typeOf = new Map(before.map((r) => [r.id, r.type]));
        let salvaged = 0;
        let rootSalvaged = false;
        for (const { id, result } of await ctx.fabric.completed(
          blockNumber,
          new Set(typeOf.keys()),
        )) {
          const isRoot = (rootJobTypes as readonly string[]).includes(typeOf.get(id)!);
          if (await recordProof(tx, id, blockNumber, isRoot, result, ctx.now())) salvaged++;
          rootSalvaged ||= isRoot;
        }
        // The root's proof was only in Redis: the block is proven, nothing left to rebuild.
        if (rootSalvaged) return null;
        const proven = await tx.proofJob.findMany({
          where: { blockNumber, status: "proven" },
          select: { id: true, proof: true },
        });
        await ctx.fabric.clearTree(blockNumber);
        // Redis's clock while none of the block's jobs is in Redis: every lease of the old tree
        // was stamped before it, every lease of the new one is stamped at or after it.
        const stamp = BigInt(await redisNow(ctx.fabric.redis));
        const txs = block.auction.txs as `0x${string}`[];
        const added = await ctx.fabric.addTree(
          blockNumber,
          planTree(block.auction.txCount),
          nodePriority,
          (node) => (node.txIndex !== undefined ? [txs[node.txIndex]!] : []),
          new Map(proven.map((p) => [p.id, p.proof as `0x${string}`])),
          block.auction.proofSystem,
        );
        // Leases and failures lived in Redis: every unproven node is simply queued again, under
        // a stamp that refuses the records of leases lost with Redis still on their way (the
        // lease-records-in-order migration) and leaves alone those of the new tree's leases.
        await tx.proofJob.updateMany({
          where: {
            blockNumber,
            status: { not: "proven" },
            OR: [{ leaseAt: null }, { leaseAt: { lt: stamp } }],
          },
          data: { status: "queued", leaseId: null, operator: null, workerId: null, leaseAt: stamp },
        });
        const now = BigInt(ctx.now());
        const stillDown = relaysAbsent && clockRuns(ctx, block.stage) ? now : null;
        await tx.$executeRaw`
          UPDATE "Block" SET "fabricJobs" = ${added},
            "fabricDownMs" = "fabricDownMs" +
              GREATEST(0, ${now}::bigint - GREATEST(COALESCE("fabricDownSince", ${BigInt(lostSince)}::bigint),
                COALESCE("fabricCreditedTo", 0))),
            "fabricDownSince" = ${stillDown}::bigint,
            "fabricCreditedTo" = GREATEST(COALESCE("fabricCreditedTo", 0), ${now}::bigint)
          WHERE number = ${blockNumber}`;
        return { added, salvaged, kept: proven.length };
      },
      { maxWait: 30_000, timeout: 30_000 },
    );
    if (!outcome) return;
    this.seenWhole.set(blockNumber, ctx.now());
    // Relays drop their cached view of the blocks and wake every waiting worker.
    await ctx.fabric.announceBlocks();
    ctx.log.warn(
      { blockNumber, jobsSeen, ...outcome },
      "proof tree lost from Redis: rebuilt from Postgres, deadline extended",
    );
  }
}
