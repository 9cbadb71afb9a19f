// The proof broker on a real Redis: lease records (token-keyed, with a TTL, expiring on Redis's
// clock), lapses that a fast re-lease cannot hide, late calls that cannot touch a new holder's
// record, the presence rule for forgiving lapses, the per-job attempt cap, and records and
// completions whose replies were lost or came only after their deadline.
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { jobTypes, planTree } from "@prover-boost/core";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { blockQueueName, type FabricOptions, ProofFabric } from "../fabric.ts";
import { deleteKeysWithPrefix } from "../redis.ts";
import { ProofBroker } from "./broker.ts";
import { type Lease, redisNow } from "./records.ts";
import { AgentAtCapacityError, type ProofBrokerOptions, type ProvingAgent } from "./types.ts";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const LEASE_MS = 300;
const prefix = `pbtest-${randomBytes(5).toString("hex")}`;
const opened: { fabric: ProofFabric; broker: ProofBroker }[] = [];

async function openBroker(
  options: Partial<ProofBrokerOptions> = {},
  commandTimeoutMs?: number,
  fabricOptions: Partial<FabricOptions> = {},
) {
  const leaseMs = options.leaseMs ?? LEASE_MS;
  const fabric = await ProofFabric.open({
    redisUrl: REDIS_URL,
    prefix,
    leaseMs,
    ...(commandTimeoutMs ? { commandTimeoutMs } : {}),
    ...fabricOptions,
  });
  const broker = new ProofBroker(fabric, {
    leaseMs,
    maxRetryableFailsPerAgent: 3,
    maxJobFailsPerOperator: 4,
    maxJobAttempts: 5,
    ...options,
  });
  await broker.start();
  opened.push({ fabric, broker });
  return broker;
}

let main: ProofBroker;
let nextBlock = 1;

beforeAll(async () => {
  main = await openBroker();
});
afterEach(async () => {
  // Brokers a test opened besides the main one.
  for (const { fabric, broker } of opened.splice(1)) {
    await broker.close();
    await fabric.close();
  }
});
afterAll(async () => {
  await main.close();
  await main.fabric.close();
  // Deleted once nothing of the fabric runs: a BullMQ handle's late write (its queue's meta)
  // would otherwise outlive a delete made before the close.
  const redis = new Redis(REDIS_URL);
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});

/**
 * Every command Redis runs from now on, as its arguments, through MONITOR on a plain socket.
 * ioredis's own monitor() can throw "Command queue state error" when a monitored command's line
 * arrives in the same read as MONITOR's +OK, before the client has switched modes; here lines are
 * read only after the +OK. Resolves once Redis has started monitoring.
 */
async function monitorRedis(onCommand: (args: string[]) => void) {
  const { hostname, port } = new URL(REDIS_URL);
  const socket = connect(Number(port || 6379), hostname || "127.0.0.1");
  let buffered = "";
  let monitoring = false;
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      let end = buffered.indexOf("\r\n");
      while (end >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!monitoring) {
          if (line !== "+OK") reject(new Error(`MONITOR answered ${line}`));
          monitoring = true;
          resolve();
        } else {
          onCommand([...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!));
        }
        end = buffered.indexOf("\r\n");
      }
    });
    socket.write("MONITOR\r\n");
  });
  return { close: () => socket.destroy() };
}

function agent(name: string, operator = `0x${"a".repeat(39)}1`): ProvingAgent {
  return {
    sessionId: `s-${name}-${randomBytes(3).toString("hex")}`,
    operator,
    workerName: name,
    capacity: 1,
    jobTypes,
    kinds: ["root", "merge", "base"],
    affinity: false,
  };
}

/** A new block's proof tree of `txs` transactions, its bases ready. */
async function treeBlock(txs: number): Promise<number> {
  const block = nextBlock++;
  await main.fabric.addTree(
    block,
    planTree(txs),
    (n) => n.level + 1,
    () => [`0x${"11".repeat(32)}`],
  );
  return block;
}

/** A block of one transaction: one base job under a root, the base the only one ready. */
const oneJobBlock = () => treeBlock(1);

async function lease(broker: ProofBroker, a: ProvingAgent, block: number) {
  const out = await broker.getProvingJob(a, [block], Date.now());
  return out.leased?.lease ?? null;
}

async function until<T>(fn: () => Promise<T | null | undefined | false>, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("condition not met");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until BullMQ's lock on the job (the lease) is gone. */
const lockGone = (broker: ProofBroker, jobId: string) =>
  until(async () => (await broker.fabric.redis.exists(broker.lockKey(jobId, "base"))) === 0);

describe("lease records", () => {
  it("expire with BullMQ's lock on Redis's clock, and carry a TTL", async () => {
    const block = await oneJobBlock();
    const before = await redisNow(main.fabric.redis);
    const l = (await lease(main, agent("ttl"), block))!;
    const after = await redisNow(main.fabric.redis);
    expect(l.expiresAt).toBeGreaterThanOrEqual(before + LEASE_MS);
    expect(l.expiresAt).toBeLessThanOrEqual(after + LEASE_MS);
    expect(await main.fabric.redis.pttl(main.records.jobKey(l.jobId))).toBeGreaterThan(0);
    // A heartbeat moves the expiry on Redis's clock too.
    const renewedAt = await redisNow(main.fabric.redis);
    const next = (await main.heartbeat(l))!;
    expect(next).toBeGreaterThanOrEqual(renewedAt + LEASE_MS);
    expect((await main.leaseOf(l.sessionId, l.jobId))?.expiresAt).toBe(next);
  });

  it("a fast re-lease does not hide the lapse of the lease before it", async () => {
    const block = await oneJobBlock();
    const silent = agent("silent");
    const stalled = new Set<string>();
    main.fabric.events.on("stalled", (id: string) => stalled.add(id));
    const first = (await lease(main, silent, block))!;
    // BullMQ moved the job back to its queue (nobody handles the event here).
    await until(async () => stalled.has(first.jobId));
    // The job is back in the queue and leased again before anyone looked at the lapse.
    const next = agent("next");
    const second = (await lease(main, next, block))!;
    expect(second.jobId).toBe(first.jobId);
    const lapses = await main.claimTimedOutJob(first.jobId);
    expect(lapses.map((l) => [l.lease.sessionId, l.forgiven])).toEqual([[silent.sessionId, false]]);
    // The new holder's record is untouched, and the lapse is claimed once.
    expect(await main.leaseOf(next.sessionId, second.jobId)).toMatchObject({ token: second.token });
    expect(await main.claimTimedOutJob(first.jobId)).toEqual([]);
  });

  it("a late bad proof or fail from a lapsed holder cannot delete the new holder's record", async () => {
    const block = await oneJobBlock();
    const late = agent("late");
    const first = (await lease(main, late, block))!;
    await lockGone(main, first.jobId);
    const next = agent("holder");
    const second = (await until(() => lease(main, next, block)))!;
    expect(await main.rejectProvingJobResult(first)).toEqual({ lost: true });
    expect(await main.reportProvingJobError(first, "late", true)).toEqual({ lost: true });
    // A fail for good on the lost lease is refused before anything is marked for it.
    const marked: string[] = [];
    expect(
      await main.reportProvingJobError(first, "late", false, async (status) => {
        marked.push(status);
      }),
    ).toEqual({ lost: true });
    expect(marked).toEqual([]);
    expect(await main.leaseOf(next.sessionId, second.jobId)).toMatchObject({ token: second.token });
    // Nothing was counted for the refused calls; the lapse is still there to be claimed.
    expect(await main.fabric.attempts.jobFails(block, first.jobId)).toBe(0);
    const lapses = await main.claimTimedOutJob(first.jobId);
    expect(lapses.map((l) => l.lease.sessionId)).toEqual([late.sessionId]);
  });
});

describe("a lease held past LEASE_MAX_MS", () => {
  // A lease long enough that a heartbeat every sixth of it survives a slow machine's pauses.
  const LONG_MS = 1500;

  it("is extended up to its limit from the grant, then refused and runs out as a lapse", async () => {
    const MAX_MS = 3 * LONG_MS;
    const capped = await openBroker({ leaseMs: LONG_MS, leaseMaxMs: MAX_MS });
    const block = await oneJobBlock();
    const holder = agent("holder");
    const l = (await lease(capped, holder, block))!;
    const stalled = new Set<string>();
    capped.fabric.events.on("stalled", (id: string) => stalled.add(id));
    // Heartbeats keep it, but never past the grant plus the limit.
    let last = l.expiresAt;
    while ((await redisNow(capped.fabric.redis)) < l.leasedAt + MAX_MS - LONG_MS / 2) {
      const next = await capped.heartbeat(l);
      expect(next).not.toBeNull();
      expect(next!).toBeLessThanOrEqual(l.leasedAt + MAX_MS);
      last = next!;
      await new Promise((r) => setTimeout(r, LONG_MS / 6));
    }
    expect(last).toBeGreaterThan(l.expiresAt);
    // A heartbeat the relay read 300 ms before it handled it is judged at its arrival: it keeps
    // what was left of the lease then, which ends 300 ms past the limit.
    expect(await capped.heartbeat(l, 300)).toBe(l.leasedAt + MAX_MS + 300);
    // Past the limit, a heartbeat is refused, and the lease runs out like any other: its lapse
    // is the worker's, and the job goes back for someone else.
    await until(async () => (await redisNow(capped.fabric.redis)) >= l.leasedAt + MAX_MS + 300);
    expect(await capped.heartbeatOrWhy(l)).toBe("held-too-long");
    await lockGone(capped, l.jobId);
    // Once the lock has run out too, the refusal still says it is the limit (the relay's answer
    // names it), judged where the script reads the record, on Redis's clock.
    expect(await capped.heartbeatOrWhy(l)).toBe("held-too-long");
    expect(await capped.heartbeat(l)).toBeNull();
    await until(async () => stalled.has(l.jobId));
    const lapses = await capped.claimTimedOutJob(l.jobId);
    expect(lapses.map((x) => [x.lease.sessionId, x.forgiven])).toEqual([[holder.sessionId, false]]);
    const next = (await until(() => lease(capped, agent("next"), block)))!;
    expect(next.jobId).toBe(l.jobId);
  });

  it("that lapsed before its limit is refused as lost, not as held too long", async () => {
    const capped = await openBroker({ leaseMs: LONG_MS, leaseMaxMs: 10 * LONG_MS });
    const block = await oneJobBlock();
    const l = (await lease(capped, agent("silent"), block))!;
    await lockGone(capped, l.jobId);
    expect(await capped.heartbeatOrWhy(l)).toBe("lost");
  });

  it("is never shorter than LEASE_MS, and without a limit heartbeats keep a lease", async () => {
    expect((await openBroker({ leaseMs: LONG_MS, leaseMaxMs: LONG_MS / 2 })).leaseMaxMs).toBe(
      LONG_MS,
    );
    const unlimited = await openBroker({ leaseMs: LONG_MS });
    expect(unlimited.leaseMaxMs).toBe(0);
    const block = await oneJobBlock();
    const l = (await lease(unlimited, agent("unlimited"), block))!;
    let last = l.expiresAt;
    while ((await redisNow(unlimited.fabric.redis)) < l.leasedAt + 3 * LONG_MS) {
      const next = await unlimited.heartbeat(l);
      expect(next).not.toBeNull();
      last = next!;
      await new Promise((r) => setTimeout(r, LONG_MS / 6));
    }
    // Past any limit of three leases or less.
    expect(last).toBeGreaterThan(l.leasedAt + 3 * LONG_MS);
  });
});

describe("a parent's lease", () => {
  it("carries its children's results, read in the same round trip as its record", async () => {
    const block = await oneJobBlock();
    const prover = agent("child-prover");
    const child = (await main.getProvingJob(prover, [block], Date.now())).leased!;
    expect(child.job.data.children).toEqual([]);
    // A leaf has no children's results to read.
    expect(child.childResults).toBeUndefined();
    const proof = `0x${"ab".repeat(32)}` as const;
    await main.reportProvingJobSuccess(child.lease, {
      proof,
      operator: prover.operator,
      worker: prover.workerName,
    });
    const parent = (await main.getProvingJob(agent("parent-prover"), [block], Date.now())).leased!;
    expect(parent.job.data.children).toEqual([child.lease.jobId]);
    expect(Object.values(parent.childResults ?? {}).map((r) => JSON.parse(r).proof)).toEqual([
      proof,
    ]);
    expect(await main.fabric.childProofs(parent.job, parent.childResults)).toEqual([proof]);
    // The same as a read of its own.
    expect(await main.fabric.childProofs(parent.job)).toEqual([proof]);
  });
});

describe("known leases (the lookup a heartbeat or result is spared)", () => {
  it("are the lease granted, until its record is dropped or its lapse claimed", async () => {
    const block = await oneJobBlock();
    const a = agent("known");
    const l = (await lease(main, a, block))!;
    expect(main.knownLease(a.sessionId, l.jobId)).toEqual(l);
    // Another broker (relay) did not grant it: it has to look the record up.
    const other = await openBroker();
    expect(other.knownLease(a.sessionId, l.jobId)).toBeUndefined();
    expect(await other.leaseOf(a.sessionId, l.jobId)).toMatchObject({ token: l.token });
    await lockGone(main, l.jobId);
    await main.claimTimedOutJob(l.jobId);
    expect(main.knownLease(a.sessionId, l.jobId)).toBeUndefined();
  });

  it("may be stale where another broker granted the session a newer lease on the job", async () => {
    const block = await oneJobBlock();
    const a = agent("moved");
    const first = (await lease(main, a, block))!;
    const other = await openBroker();
    await lockGone(main, first.jobId);
    await other.claimTimedOutJob(first.jobId);
    const second = (await until(() => lease(other, a, block)))!;
    // `main` still knows the first: its use fails in Redis, and the record names the second.
    const stale = main.knownLease(a.sessionId, first.jobId)!;
    expect(stale.token).toBe(first.token);
    expect(await main.heartbeat(stale)).toBeNull();
    expect(await main.leaseOf(a.sessionId, first.jobId)).toMatchObject({ token: second.token });
    main.forget(stale);
    expect(main.knownLease(a.sessionId, first.jobId)).toBeUndefined();
  });
});

describe("capacity slots", () => {
  /** Members of the session's slot set: live leases and reservations. */
  const slotsOf = (a: ProvingAgent) =>
    main.fabric.redis.zrange(main.records.sessionKey(a.sessionId), "0", "-1");

  it("are reserved only when a look finds a job in reach, so an empty look writes nothing", async () => {
    const block = await oneJobBlock();
    const a = agent("empty-look");
    expect(await lease(main, a, block)).not.toBeNull();
    // The block's only ready job is taken: another agent's look finds nothing, and reserves
    // nothing (not even a slot made and released: the set is never written).
    const b = agent("nothing-ready");
    const key = main.records.sessionKey(b.sessionId);
    const touched: string[][] = [];
    const monitor = await monitorRedis((args) => {
      if (args.includes(key)) touched.push(args);
    });
    const out = await main.getProvingJob(b, [block], Date.now());
    expect(out.leased).toBeUndefined();
    // A command sent after the look comes back after it: everything the look sent was seen.
    await main.fabric.redis.exists(key);
    await until(async () => touched.some((args) => args[0] === "exists") || null);
    monitor.close();
    // The look may name the set (its script reserves only with a job in reach): no write to it.
    const writes = touched
      .map((args) => args[0]!.toLowerCase())
      .filter((cmd) => cmd !== "evalsha" && cmd !== "exists");
    expect(writes).toEqual([]);
  });

  it("refuse a full agent when a job is in reach or no block is open, else give it nothing", async () => {
    const a = agent("full");
    const first = (await lease(main, a, await oneJobBlock()))!;
    expect(await slotsOf(a)).toEqual([first.token]);
    // No block to look at: a full agent is told it is full (an agent with room gets nothing).
    await expect(main.getProvingJob(a, [], Date.now())).rejects.toThrow(AgentAtCapacityError);
    expect((await main.getProvingJob(agent("room"), [], Date.now())).leased).toBeUndefined();
    // Nothing ready in the first block any more: a full agent is simply given nothing.
    const none = await main.getProvingJob(a, [nextBlock - 1], Date.now());
    expect(none.leased).toBeUndefined();
    // A job in reach: refused for capacity, the job stays queued for others, no slot is left.
    const block = await oneJobBlock();
    await expect(main.getProvingJob(a, [block], Date.now())).rejects.toThrow(AgentAtCapacityError);
    expect(await slotsOf(a)).toEqual([first.token]);
    expect(await lease(main, agent("other"), block)).not.toBeNull();
  });

  it("are reserved no more once the session signed out, which lists its most recent leases", async () => {
    const a = { ...agent("signing-out"), capacity: 2 };
    const leased: string[] = [];
    for (let i = 0; i < 2 * a.capacity + 8 + 3; i++) {
      const l = (await lease(main, a, await oneJobBlock()))!;
      leased.push(l.jobId);
      expect(await main.records.drop(l)).toBe(true);
    }
    const held = (await lease(main, a, await oneJobBlock()))!;
    // Newest first, as many as a stopping worker could not have heard of, with room to spare.
    const recent = await main.endSession(a.sessionId, 60_000);
    expect(recent).toEqual([held.jobId, ...leased.reverse()].slice(0, 2 * a.capacity + 8));
    expect(await main.sessionEnded(a.sessionId)).toBe(true);
    // Room for one more lease, and a job in reach: refused, by every broker; not counted live.
    const block = await oneJobBlock();
    await expect(main.getProvingJob(a, [block], Date.now())).rejects.toThrow(AgentAtCapacityError);
    await expect(main.getProvingJob(a, [], Date.now())).rejects.toThrow(AgentAtCapacityError);
    expect(await main.liveCount(a.sessionId)).toBe(1);
    expect(await main.sessionEnded(agent("still-in").sessionId)).toBe(false);
    expect(await lease(main, agent("other"), block)).not.toBeNull();
  });

  it("are not turned into a lease when the session signs out between its slot and its record", async () => {
    const a = agent("signing-out-mid-lease");
    const block = await oneJobBlock();
    const records = main.records;
    const record = records.record.bind(records);
    records.record = async (...args: Parameters<typeof record>) => {
      await main.endSession(a.sessionId, 60_000);
      return record(...args);
    };
    try {
      await expect(main.getProvingJob(a, [block], Date.now())).rejects.toThrow(
        AgentAtCapacityError,
      );
    } finally {
      records.record = record;
    }
    // Never leased: nothing recorded, no slot held, the job back for the next agent.
    expect(await slotsOf(a)).toEqual(["ended"]);
    const next = await until(() => lease(main, agent("after-sign-out"), block));
    expect(await main.recordsOf(next.jobId)).toEqual([next]);
  });

  it("are given back at once by a lease whose tree is sealed or cleared (no lapse to claim)", async () => {
    for (const end of ["seal", "clear"] as const) {
      const a = agent(`ended-by-${end}`);
      const block = await oneJobBlock();
      const held = (await lease(main, a, block))!;
      expect(await slotsOf(a)).toEqual([held.token]);
      if (end === "seal") await main.fabric.sealBlock(block);
      else await main.fabric.clearTree(block);
      // Long before the lease would have run out, the agent has room for a job elsewhere.
      expect(await slotsOf(a)).toEqual([]);
      expect(await lease(main, a, await oneJobBlock())).not.toBeNull();
    }
  });

  /**
   * Completes the agent's lease `done` with a callback that looks for its next job in `blocks`
   * at once. Says whether Redis had answered the completion's drop of the lease record (the
   * first script on the fabric's connection to name the agent's slot set) when the callback ran,
   * and what the look got.
   */
  async function completeAndLookAgain(a: ProvingAgent, done: Lease, blocks: number[]) {
    type EvalSha = (...args: unknown[]) => Promise<unknown>;
    const redis = main.fabric.redis as unknown as { evalsha: EvalSha };
    const evalsha = redis.evalsha;
    const key = main.records.sessionKey(a.sessionId);
    let drop: { answered: boolean } | undefined;
    redis.evalsha = (...args) => {
      const reply = evalsha.apply(redis, args);
      if (!drop && args.includes(key)) {
        const seen = { answered: false };
        drop = seen;
        reply.then(
          () => (seen.answered = true),
          () => {},
        );
      }
      return reply;
    };
    let answered: boolean | undefined;
    let next: ReturnType<ProofBroker["getProvingJob"]> | undefined;
    const result = {
      proof: `0x${"ab".repeat(32)}` as const,
      operator: a.operator,
      worker: a.workerName,
    };
    try {
      await main.reportProvingJobSuccess(done, result, undefined, undefined, () => {
        answered = drop?.answered;
        next = main.getProvingJob(a, blocks, Date.now());
      });
    } finally {
      redis.evalsha = evalsha;
    }
    return { dropAnsweredFirst: answered, next: await next };
  }

  it("are free to a look sent as a completion's drop is sent, before Redis answers the drop", async () => {
    // A base job under a merge: the drop goes with the parent's announcement.
    const block = await treeBlock(4);
    const a = agent("next-beside-drop");
    const first = (await lease(main, a, block))!;
    const { dropAnsweredFirst, next } = await completeAndLookAgain(a, first, [block]);
    expect(dropAnsweredFirst).toBe(false);
    // The look reached Redis after the drop: the agent (capacity 1) had room for its next job.
    expect(next?.leased?.job.data.type).toBe("base");
    expect(await slotsOf(a)).toEqual([next!.leased!.lease.token]);

    // A job with no parent (a block's root): the drop goes alone.
    const rootBlock = await oneJobBlock();
    const base = (await lease(main, agent("root-child"), rootBlock))!;
    await main.reportProvingJobSuccess(base, {
      proof: `0x${"cd".repeat(32)}`,
      operator: base.operator,
      worker: base.workerName,
    });
    const b = agent("next-after-root");
    const root = (await lease(main, b, rootBlock))!;
    expect(root.jobId).not.toBe(base.jobId);
    const later = await oneJobBlock();
    const after = await completeAndLookAgain(b, root, [later]);
    expect(after.dropAnsweredFirst).toBe(false);
    expect(after.next?.leased?.lease.jobId).toBeDefined();
    expect(await slotsOf(b)).toEqual([after.next!.leased!.lease.token]);
  });
});

describe("lessees looking at once", () => {
  /**
   * A block of `txs` transactions whose bases are leased until two siblings are held (with
   * `holdAll`, all of them), and whose proofs make their merge ready.
   */
  async function readyMerge(broker: ProofBroker, txs: number, holdAll = false) {
    const block = nextBlock++;
    await broker.fabric.addTree(
      block,
      planTree(txs),
      (n) => n.level + 1,
      () => [`0x${"11".repeat(32)}`],
    );
    type Leased = NonNullable<Awaited<ReturnType<ProofBroker["getProvingJob"]>>["leased"]>;
    const held = new Map<string, Leased>();
    let pair: string[] = [];
    while (pair.length < 2) {
      const leased = (await broker.getProvingJob(agent(`b-${held.size}`), [block], Date.now()))
        .leased!;
      held.set(leased.lease.jobId, leased);
      const parent = leased.job.parent!.id;
      pair = [...held.values()]
        .filter((l) => l.job.parent!.id === parent)
        .map((l) => l.lease.jobId);
    }
    while (holdAll && held.size < txs) {
      const leased = (await broker.getProvingJob(agent(`b-${held.size}`), [block], Date.now()))
        .leased!;
      held.set(leased.lease.jobId, leased);
    }
    for (const id of pair) {
      const { lease } = held.get(id)!;
      await broker.reportProvingJobSuccess(lease, {
        proof: `0x${"ab".repeat(32)}`,
        operator: lease.operator,
        worker: lease.workerName,
      });
    }
    return { block, merge: held.get(pair[0]!)!.job.parent!.id, held };
  }

  /** `count` agents ask for a job of `block` at once: what each got, and how many pops ran. */
  async function leaseAtOnce(broker: ProofBroker, block: number, count: number) {
    // Every pop of this block's queues (BullMQ's moveToActive pops its wait list first).
    const queuePrefix = `${prefix}:b${block}-`;
    let pops = 0;
    const monitor = await monitorRedis((args) => {
      if (args[0] === "RPOPLPUSH" && args[1]?.startsWith(queuePrefix)) pops++;
    });
    const lessees = Array.from({ length: count }, (_, i) => agent(`at-once-${i}`));
    const outs = await Promise.all(
      lessees.map((a) => broker.getProvingJob(a, [block], Date.now())),
    );
    // A command sent after the pops comes back after them: every pop was seen.
    let synced = false;
    const sync = `${queuePrefix}sync`;
    const seen = await monitorRedis((args) => {
      if (args[0] === "exists" && args[1] === sync) synced = true;
    });
    await broker.fabric.redis.exists(sync);
    await until(async () => synced || null);
    monitor.close();
    seen.close();
    return { taken: outs.map((o) => o.leased?.lease.jobId ?? null), pops };
  }

  it("do not all pop the queue whose one ready job one of them is popping already", async () => {
    const broker = await openBroker({ leaseMs: 60_000 });
    const { block, merge, held } = await readyMerge(broker, 16);
    const { taken, pops } = await leaseAtOnce(broker, block, 6);
    // The merge went to one of them, nearer the root first, and bases to the rest...
    expect(taken.filter((id) => id === merge)).toHaveLength(1);
    expect(taken.filter((id) => id !== null && id !== merge && !held.has(id))).toHaveLength(5);
    // ...with one pop each: none of the others popped the merge's queue only to find it empty.
    expect(pops).toBe(6);
  });

  it("and where it is the only ready job, the others get nothing without popping", async () => {
    // 4 transactions, every base held (the lease long enough for none to lapse back to the
    // queue meanwhile): the merge is all there is.
    const broker = await openBroker({ leaseMs: 60_000 });
    const { block, merge } = await readyMerge(broker, 4, true);
    const { taken, pops } = await leaseAtOnce(broker, block, 5);
    expect(taken.filter((id) => id === merge)).toHaveLength(1);
    expect(taken.filter((id) => id === null)).toHaveLength(4);
    expect(pops).toBe(1);
  });
});

/** Runs `fn` with `main` absent (its presence stopped), so the brokers `fn` opens are alone. */
/** Drops the broker's connection to Redis and waits until it is back. */
async function dropConnection(b: ProofBroker) {
  const back = new Promise((r) => b.fabric.redis.once("ready", r));
  b.fabric.redis.disconnect(true);
  await back;
}

async function withMainAway(fn: () => Promise<void>) {
  await main.presence.stop();
  try {
    await fn();
  } finally {
    await main.presence.start();
  }
}

describe("forgiving a lapse", () => {
  it("is for when no broker was present through the lease's last window", async () => {
    const block = await oneJobBlock();
    const a = await openBroker();
    const l = (await lease(a, agent("away"), block))!;
    // The only broker that could take heartbeats goes away; the lease runs out meanwhile.
    await a.close();
    await lockGone(main, l.jobId);
    // `main` was present throughout, so it is not forgiven...
    const present = await main.records.ofJob(l.jobId);
    expect(present).toHaveLength(1);
    // ...but a deployment where every broker went away forgives it: claimed by one that
    // started after the lease's last renewal, with `main` absent.
    await withMainAway(async () => {
      const b = await openBroker();
      const lapses = await b.claimTimedOutJob(l.jobId);
      expect(lapses.map((x) => x.forgiven)).toEqual([true]);
    });
  });

  it("is not for a lapse caught by a relay that restarted while another stayed up", async () => {
    const block = await oneJobBlock();
    const a = await openBroker();
    const l = (await lease(a, agent("withholder"), block))!;
    // The worker heard of its lease (it renewed it once), then fell silent.
    expect(await a.heartbeat(l)).not.toBeNull();
    await a.close();
    await lockGone(main, l.jobId);
    // Caught by a broker started after the lease (a restarted relay); `main` stayed up.
    const restarted = await openBroker();
    const lapses = await restarted.claimTimedOutJob(l.jobId);
    expect(lapses.map((x) => x.forgiven)).toEqual([false]);
  });

  it("is for a lease never renewed whose granting relay died (its answer may never have left)", async () => {
    const block = await oneJobBlock();
    const a = await openBroker();
    const l = (await lease(a, agent("never-heard"), block))!;
    // The relay that granted it dies before the worker could renew it; `main` stays up.
    await a.close();
    await lockGone(main, l.jobId);
    const lapses = await main.claimTimedOutJob(l.jobId);
    expect(lapses.map((x) => x.forgiven)).toEqual([true]);
  });

  // A relay too busy to read requests on time (behind) cannot hear heartbeats: a lapse whose
  // last window it spent behind is forgiven, unless another broker was there on time.
  for (const [behindThen, forgiven] of [
    [true, true],
    [false, false],
  ] as const) {
    it(`is ${forgiven ? "" : "not "}for a renewed lease whose only broker was ${behindThen ? "" : "not "}behind`, async () => {
      const block = await oneJobBlock();
      let behind = false;
      await withMainAway(async () => {
        const b = await openBroker({ behind: () => behind });
        const l = (await lease(b, agent(`behind-${behindThen}`), block))!;
        expect(await b.heartbeat(l)).not.toBeNull(); // heard of: the granter rule is not at play
        // Behind after the renewal (a stretch starting in the renewal's own millisecond would
        // still cover it: Redis's clock counts whole milliseconds).
        await new Promise((r) => setTimeout(r, 5));
        behind = behindThen;
        await b.presence.refresh();
        behind = false; // on time again by the claim: the window is what counts
        await lockGone(b, l.jobId);
        const lapses = await b.claimTimedOutJob(l.jobId);
        expect(lapses.map((x) => x.forgiven)).toEqual([forgiven]);
      });
    });
  }

  it("is for a lapse claimed while the claiming broker is behind", async () => {
    const block = await oneJobBlock();
    let behind = false;
    await withMainAway(async () => {
      const b = await openBroker({ behind: () => behind });
      const l = (await lease(b, agent("claimed-behind"), block))!;
      expect(await b.heartbeat(l)).not.toBeNull();
      await lockGone(b, l.jobId);
      behind = true;
      const lapses = await b.claimTimedOutJob(l.jobId);
      expect(lapses.map((x) => x.forgiven)).toEqual([true]);
    });
  });

  it("is not for a lapse while one broker was behind and another on time", async () => {
    const block = await oneJobBlock();
    const b = await openBroker({ behind: () => true });
    const l = (await lease(b, agent("covered"), block))!;
    expect(await b.heartbeat(l)).not.toBeNull();
    await b.presence.refresh();
    await lockGone(b, l.jobId);
    // `main` stayed present and on time through the window.
    const lapses = await b.claimTimedOutJob(l.jobId);
    expect(lapses.map((x) => x.forgiven)).toEqual([false]);
  });

  it("is for a lapse whose window its only broker spent cut off from Redis, however briefly", async () => {
    const block = await oneJobBlock();
    await withMainAway(async () => {
      const b = await openBroker();
      const l = (await lease(b, agent("cut-off"), block))!;
      expect(await b.heartbeat(l)).not.toBeNull();
      // The broker's connection drops and is back at once, well within a lease: heartbeats sent
      // meanwhile failed, so its presence starts again from the reconnect.
      await dropConnection(b);
      await b.presence.refresh();
      await lockGone(b, l.jobId);
      const lapses = await b.claimTimedOutJob(l.jobId);
      expect(lapses.map((x) => x.forgiven)).toEqual([true]);
    });
  });

  it("is for a lapse whose window its only broker spent waiting on Redis, its connection open", async () => {
    const block = await oneJobBlock();
    await withMainAway(async () => {
      const b = await openBroker({}, undefined, { checkStalled: false });
      const l = (await lease(b, agent("stalled"), block))!;
      expect(await b.heartbeat(l)).not.toBeNull();
      // Nothing the broker sends reaches Redis (a stalled Redis, as far as it can tell) until
      // the lease has run out; its presence refresh waits in the socket, to run late.
      const socket = b.fabric.redis.stream as Socket;
      socket.cork();
      try {
        await lockGone(main, l.jobId);
      } finally {
        socket.uncork();
      }
      await b.presence.refresh();
      const lapses = await b.claimTimedOutJob(l.jobId);
      expect(lapses.map((x) => x.forgiven)).toEqual([true]);
    });
  });

  it("is not for a lapse its broker heard through, however long it was behind afterwards", async () => {
    const block = await oneJobBlock();
    let behind = false;
    await withMainAway(async () => {
      const b = await openBroker({ behind: () => behind }, undefined, { checkStalled: false });
      const l = (await lease(b, agent("heard"), block))!;
      expect(await b.heartbeat(l)).not.toBeNull();
      await lockGone(b, l.jobId);
      // Behind for many refreshes after the lapse: each starts a stretch of its own.
      behind = true;
      for (let i = 0; i < 40; i++) await b.presence.refresh();
      behind = false;
      const lapses = await b.claimTimedOutJob(l.jobId);
      expect(lapses.map((x) => x.forgiven)).toEqual([false]);
    });
  });

  it("is for a lapse whose window began before its broker's first refresh on time after it was behind", async () => {
    const block = await oneJobBlock();
    let behind = false;
    await withMainAway(async () => {
      // No refresh of its own timer in the test's time: only the ones made here.
      const b = await openBroker({ behind: () => behind, presenceIntervalMs: 600_000 }, undefined, {
        checkStalled: false,
      });
      const l = (await lease(b, agent("recovering"), block))!;
      // Behind at its last refresh, then no refresh on time before the lease's window began:
      // nothing showed it on time through that window.
      behind = true;
      await b.presence.refresh();
      behind = false;
      await new Promise((r) => setTimeout(r, 5)); // after that refresh's millisecond
      expect(await b.heartbeat(l)).not.toBeNull();
      await lockGone(b, l.jobId);
      const lapses = await b.claimTimedOutJob(l.jobId);
      expect(lapses.map((x) => x.forgiven)).toEqual([true]);
    });
  });

  it("is not for a lapse its only broker heard through from a renewal LEASE_MAX_MS cut short", async () => {
    // A renewal cut short by the limit ends sooner than LEASE_MS after it: the lease's last
    // window starts at the renewal itself, not LEASE_MS before its expiry, which lies before it.
    // Here expiry - LEASE_MS is the grant + 1 s; the renewal comes later, and the lock it renews
    // runs out at the grant + 4 s, which leaves seconds for a broker to start and one to stop.
    const LONG_MS = 4000;
    const MAX_MS = 5000;
    const opts = { leaseMs: LONG_MS, leaseMaxMs: MAX_MS };
    const block = await oneJobBlock();
    await withMainAway(async () => {
      const granter = await openBroker(opts);
      const l = (await lease(granter, agent("capped-squatter"), block))!;
      // A broker starts after expiry - LEASE_MS of the cut-short renewal to come, but before the
      // renewal; the granter goes.
      await until(
        async () => (await redisNow(granter.fabric.redis)) >= l.leasedAt + MAX_MS - LONG_MS + 100,
      );
      const heard = await openBroker(opts);
      await granter.close();
      const renewedAt = await redisNow(heard.fabric.redis);
      const expiresAt = (await heard.heartbeat(l))!;
      expect(expiresAt).toBe(l.leasedAt + MAX_MS);
      expect(expiresAt - renewedAt).toBeLessThan(LONG_MS);
      // The worker falls silent; `heard` was there from the renewal to the expiry.
      await lockGone(heard, l.jobId);
      const lapses = await heard.claimTimedOutJob(l.jobId);
      expect(lapses.map((x) => x.forgiven)).toEqual([false]);
    });
  });

  it("is not for a lease never renewed whose granting relay is still up", async () => {
    const block = await oneJobBlock();
    const l = (await lease(main, agent("silent"), block))!;
    await lockGone(main, l.jobId);
    const lapses = await main.claimTimedOutJob(l.jobId);
    expect(lapses.map((x) => x.forgiven)).toEqual([false]);
  });
});

describe("a lease that ran out while no broker could hear its worker", () => {
  it("is revived by the worker's late heartbeat while its lapse is unswept", async () => {
    const block = await oneJobBlock();
    await withMainAway(async () => {
      // No sweeper here: the lapse stays unswept for as long as the test needs.
      const b = await openBroker({}, undefined, { checkStalled: false });
      const l = (await lease(b, agent("outage"), block))!;
      expect(await b.heartbeat(l)).not.toBeNull();
      await dropConnection(b);
      await lockGone(b, l.jobId);
      // It arrived after the lease's expiry: late, but nobody could have heard it sooner.
      const expiry = await b.heartbeat(l, 0);
      expect(expiry).not.toBeNull();
      expect(await b.fabric.redis.get(b.lockKey(l.jobId, "base"))).toBe(l.token);
      const [record] = await b.records.ofJob(l.jobId);
      expect(record?.revived).toBe(1);
      // The live holder's record is not a lapse.
      expect(await b.claimTimedOutJob(l.jobId)).toEqual([]);
    });
  });

  // A longer lease here: its slack for a broker's last refresh (LEASE_MS / 3) outlasts any pause
  // of a busy machine between two of `main`'s refreshes.
  it("is not revived when a broker was there to hear the worker throughout", async () => {
    const block = await oneJobBlock();
    const b = await openBroker({ leaseMs: 1500 }, undefined, { checkStalled: false });
    const l = (await lease(b, agent("silent-late"), block))!;
    expect(await b.heartbeat(l)).not.toBeNull();
    await lockGone(b, l.jobId);
    expect(await b.heartbeat(l, 0)).toBeNull();
    expect(await b.fabric.redis.exists(b.lockKey(l.jobId, "base"))).toBe(0);
    const lapses = await b.claimTimedOutJob(l.jobId);
    expect(lapses.map((x) => x.forgiven)).toEqual([false]);
  });

  it("is not revived, nor forgiven, when its only broker was cut off only after it ran out", async () => {
    const block = await oneJobBlock();
    await withMainAway(async () => {
      const b = await openBroker({ leaseMs: 1500 }, undefined, { checkStalled: false });
      const l = (await lease(b, agent("silent-before"), block))!;
      expect(await b.heartbeat(l)).not.toBeNull();
      await lockGone(b, l.jobId);
      // The broker heard nothing through the whole window; its drop comes later.
      await dropConnection(b);
      await b.presence.refresh();
      expect(await b.heartbeat(l, 0)).toBeNull();
      const lapses = await b.claimTimedOutJob(l.jobId);
      expect(lapses.map((x) => x.forgiven)).toEqual([false]);
    });
  });

  it("is not revived over a later lease of its job, though that one ran out too", async () => {
    const block = await oneJobBlock();
    await withMainAway(async () => {
      let sweeping = true;
      const b = await openBroker({}, undefined, { sweepGate: async () => sweeping });
      const stalled = new Set<string>();
      b.fabric.events.on("stalled", (id: string) => stalled.add(id));
      const first = (await lease(b, agent("first"), block))!;
      expect(await b.heartbeat(first)).not.toBeNull();
      // No broker is there from now on, so each lease's lapse would be forgiven.
      await b.presence.stop();
      // The first lapse is swept (its claim, nobody's here, is left undone) and the job leased
      // again; then sweeps stop, and the second lease runs out too.
      await until(async () => stalled.has(first.jobId));
      const second = (await until(() => lease(b, agent("second"), block)))!;
      expect(second.jobId).toBe(first.jobId);
      sweeping = false;
      await lockGone(b, second.jobId);
      expect(await b.heartbeat(first, 0)).toBeNull();
      expect(await b.heartbeat(second, 0)).not.toBeNull();
      expect(await b.fabric.redis.get(b.lockKey(second.jobId, "base"))).toBe(second.token);
    });
  });

  it("is not swept within a grace after its broker's connection to Redis comes back", async () => {
    const block = await oneJobBlock();
    await withMainAway(async () => {
      const b = await openBroker({}, undefined, { reconnectGraceMs: 60_000 });
      const l = (await lease(b, agent("after-outage"), block))!;
      expect(await b.heartbeat(l)).not.toBeNull();
      await dropConnection(b);
      await lockGone(b, l.jobId);
      // Sweeps every LEASE_MS / 8 would have put the job back long before this without the grace.
      await new Promise((r) => setTimeout(r, 4 * LEASE_MS));
      expect(await b.heartbeat(l, 0)).not.toBeNull();
    });
  });

  it("is not swept before the agent's slowest retried heartbeat, by default", async () => {
    const block = await oneJobBlock();
    await withMainAway(async () => {
      // Sweeps held back while Redis is "away" (a gate, as the link down would), then let go.
      let away = true;
      const leaseMs = 6000;
      const b = await openBroker({ leaseMs }, undefined, { sweepGate: async () => !away });
      const l = (await lease(b, agent("slow-retry"), block))!;
      // Nobody hears the agent from here: its lapse is forgiven, and revivable until swept.
      await b.presence.stop();
      await lockGone(b, l.jobId);
      await dropConnection(b);
      away = false;
      // The agent's heartbeat sent just before the comeback went unanswered a period (LEASE_MS /
      // 3), then it backed off a period: its next one comes two periods after the comeback.
      // Half a lease of grace swept the job 1 s before it.
      await new Promise((r) => setTimeout(r, (2 * leaseMs) / 3));
      expect(await b.heartbeat(l, 0)).not.toBeNull();
    });
  });

  it("is swept in the end, however often its broker's connection keeps dropping", async () => {
    const block = await oneJobBlock();
    await withMainAway(async () => {
      const graceMs = 2 * LEASE_MS;
      const b = await openBroker({}, undefined, { reconnectGraceMs: graceMs });
      const l = (await lease(b, agent("flapping"), block))!;
      await lockGone(b, l.jobId);
      // Each comeback within the grace of the one before: every sweep would fall in a grace. A row
      // of drops defers sweeps for at most the grace plus LEASE_MS from its first comeback.
      let flapping = true;
      const flaps = (async () => {
        while (flapping) {
          await dropConnection(b);
          await new Promise((r) => setTimeout(r, graceMs / 4));
        }
      })();
      try {
        await until(async () => {
          const job = await main.fabric.getJob(block, "base", l.jobId);
          return job && (await job.getState()) !== "active";
        });
      } finally {
        flapping = false;
        await flaps;
      }
      expect(await b.heartbeat(l, 0)).toBeNull();
    });
  });
});

describe("a lease whose record's reply is lost", () => {
  it("is disowned once Redis is back: its job goes back and no lapse is left to blame", async () => {
    const block = await oneJobBlock();
    // Long leases and a far deadline: without the disowning, the record would stay for the
    // lapse to be claimed and the attempt would wait out the deadline.
    const a = await openBroker({ leaseMs: 60_000 }, 120_000);
    const recordsKey = (jobId: string) => a.records.jobKey(jobId);
    // A first lease loads the record script into Redis (a NOSCRIPT answer would go unread).
    expect(await lease(a, agent("first"), await oneJobBlock())).not.toBeNull();
    // Redis runs the record, then the connection drops before its reply is read.
    const record = a.records.record.bind(a.records);
    let jobId = "";
    a.records.record = async (lease, ...rest) => {
      jobId = lease.jobId;
      const socket = a.fabric.redis.stream as Socket;
      socket.pause();
      const sent = record(lease, ...rest);
      sent.catch(() => {});
      await until(
        async () => (await main.fabric.redis.hexists(recordsKey(lease.jobId), lease.token)) === 1,
      );
      socket.destroy();
      return sent;
    };
    const who = agent("unanswered");
    const attempt = a.getProvingJob(who, [block], Date.now()).then(
      () => "leased",
      (err: Error) => err.message,
    );
    const outcome = await Promise.race([
      attempt,
      new Promise<string>((r) => setTimeout(() => r("still waiting"), 20_000)),
    ]);
    expect(outcome).toMatch(/^Connection is closed/);
    // Once the connection is back, the record goes and the job is back in its queue, well
    // before its 60 s lease could lapse.
    await until(async () => (await main.fabric.redis.hlen(recordsKey(jobId))) === 0);
    const job = await until(async () => {
      const j = await main.fabric.getJob(block, "base", jobId);
      return j && (await j.getState()) !== "active" ? j : null;
    });
    expect(await job.getState()).toMatch(/^(waiting|prioritized)$/);
    expect(await main.claimTimedOutJob(jobId)).toEqual([]);
    expect(await main.fabric.attempts.jobFails(block, jobId)).toBe(0);
    // Another worker takes it at once.
    expect((await lease(main, agent("next"), block))?.jobId).toBe(jobId);
  });
});

describe("a pop whose reply is lost", () => {
  it("leaves no job locked under its token but the one leased: the job of the pop run twice goes back", async () => {
    // Four base jobs ready; the first lease opens the fetcher and loads its scripts.
    const block = await treeBlock(4);
    const a = await openBroker({ leaseMs: 60_000 }, 120_000);
    expect(await lease(a, agent("first"), block)).not.toBeNull();
    const active = `${prefix}:${blockQueueName(block, "base")}:active`;
    const before = await main.fabric.redis.lrange(active, 0, -1);
    // Redis runs the pop, then the connection drops before its reply is read; BullMQ's
    // connection sends it again on the next one, which takes another job under the same token.
    const client = (await a.fabric.openFetcherOf(block, "base")!.getBackend()
      .client) as unknown as Redis;
    const socket = client.stream as Socket;
    socket.pause();
    const attempt = a.getProvingJob(agent("popper"), [block], Date.now());
    const [first] = await until(async () => {
      const now = await main.fabric.redis.lrange(active, 0, -1);
      const added = now.filter((id) => !before.includes(id));
      return added.length > 0 ? added : null;
    });
    socket.destroy();
    const leased = (await attempt).leased!.lease;
    expect(leased.jobId).not.toBe(first);
    // The first pop's job, which nobody holds, is back in its queue at once, not when its 60 s
    // lock runs out; another worker takes it.
    const job = await until(async () => {
      const j = await main.fabric.getJob(block, "base", first!);
      return j && (await j.getState()) !== "active" ? j : null;
    }, 10_000);
    expect(await job.getState()).toMatch(/^(waiting|prioritized)$/);
    expect(await main.fabric.redis.exists(main.lockKey(first!, "base"))).toBe(0);
    expect(await main.records.ofJob(leased.jobId)).toHaveLength(1);
    expect(await main.fabric.attempts.jobFails(block, first!)).toBe(0);
  });
});

describe("a lease whose record runs only after its deadline (Redis slow to take it)", () => {
  it("is disowned too: its job goes back at once, and the late record writes nothing", async () => {
    const block = await oneJobBlock();
    // A short deadline, a long lease: without the disowning, the job would stay locked for 60 s.
    const a = await openBroker({ leaseMs: 60_000 }, 2000);
    expect(await lease(a, agent("first"), await oneJobBlock())).not.toBeNull();
    // The record's command is held on its way (the socket corked) until well past its deadline.
    const record = a.records.record.bind(a.records);
    let jobId = "";
    let socket: Socket | undefined;
    a.records.record = (lease, ...rest) => {
      jobId = lease.jobId;
      socket = a.fabric.redis.stream as Socket;
      socket.cork();
      return record(lease, ...rest);
    };
    const outcome = await a.getProvingJob(agent("slow"), [block], Date.now()).then(
      () => "leased",
      (err: Error) => err.message,
    );
    expect(outcome).toMatch(/timed out/);
    // The job is given back while the record is still held (BullMQ's connection is not).
    const job = await until(async () => {
      const j = await main.fabric.getJob(block, "base", jobId);
      return j && (await j.getState()) !== "active" ? j : null;
    });
    expect(await job.getState()).toMatch(/^(waiting|prioritized)$/);
    // Then Redis takes the record, after its caller was told it failed: it finds no lock of
    // its token and leaves no record, so no lapse is there to blame anyone.
    socket!.uncork();
    await until(async () => (await a.fabric.redis.ping()) === "PONG");
    expect(await main.records.ofJob(jobId)).toEqual([]);
    expect(await main.claimTimedOutJob(jobId)).toEqual([]);
    expect(await main.fabric.attempts.jobFails(block, jobId)).toBe(0);
    expect((await lease(main, agent("next"), block))?.jobId).toBe(jobId);
  });
});

describe("a completion whose reply is lost", () => {
  /**
   * A job of a new block leased by a broker of 60 s leases and `deadlineMs` command deadlines;
   * `complete()` hands its proof in, giving "completed" or the error it failed with.
   */
  async function leasedJob(name: string, deadlineMs: number) {
    const block = await oneJobBlock();
    const a = await openBroker({ leaseMs: 60_000 }, deadlineMs);
    const who = agent(name);
    const { lease: l, job } = (await a.getProvingJob(who, [block], Date.now())).leased!;
    const result = {
      proof: `0x${"cd".repeat(32)}` as const,
      operator: who.operator,
      worker: who.workerName,
    };
    const complete = () =>
      a.reportProvingJobSuccess(l, result, undefined, job).then(
        () => "completed",
        (err: Error) => `${err.name}: ${err.message}`,
      );
    // The connection BullMQ completes the job on: its fetcher's.
    const fetcherClient = async () =>
      (await a.fabric.openFetcherOf(block, "base")!.getBackend().client) as unknown as Redis;
    return { block, a, l, complete, fetcherClient };
  }

  it("counts as done when BullMQ sends it again and finds the job completed with this result", async () => {
    const { block, l, complete, fetcherClient } = await leasedJob("completer", 120_000);
    // Redis completes the job, then the connection drops before the reply is read; BullMQ's
    // connection sends the completion again on the next one, where the lock is gone.
    const socket = (await fetcherClient()).stream as Socket;
    socket.pause();
    const completing = complete();
    await until(async () => (await main.fabric.getJob(block, "base", l.jobId))?.finishedOn);
    socket.destroy();
    expect(await completing).toBe("completed");
    expect(await main.records.ofJob(l.jobId)).toEqual([]);
  });

  it("counts as done when it ran only after its deadline, read behind it on its connection", async () => {
    const { l, complete, fetcherClient } = await leasedJob("late-completer", 2000);
    // The completion is held on its way past its deadline; the check that follows its failure
    // is sent on the same connection, and only then does Redis get either.
    const client = await fetcherClient();
    const socket = client.stream as Socket;
    const hget = client.hget.bind(client);
    let checked = false;
    client.hget = ((...args: Parameters<Redis["hget"]>) => {
      checked = true;
      const sent = hget(...args);
      setImmediate(() => socket.uncork());
      return sent;
    }) as Redis["hget"];
    socket.cork();
    expect(await complete()).toBe("completed");
    // Completed by the check, after the completion's own call had failed at its deadline.
    expect(checked).toBe(true);
    expect(await main.records.ofJob(l.jobId)).toEqual([]);
  });

  it("stands when the reply to the record's drop that follows it is lost", async () => {
    const { a, l, complete } = await leasedJob("dropper", 120_000);
    const socket = a.fabric.redis.stream as Socket;
    socket.pause();
    const completing = complete();
    await until(async () => (await main.records.ofJob(l.jobId)).length === 0);
    socket.destroy();
    expect(await completing).toBe("completed");
  });

  it("is still lost when the job was completed under another lease, even with the same result", async () => {
    const block = await oneJobBlock();
    const who = agent("twice");
    // The node's output is the same whoever proves it, and so is a worker's identity.
    const result = { proof: `0x${"ef".repeat(32)}` as const, operator: who.operator, worker: "w" };
    const first = (await lease(main, who, block))!;
    await lockGone(main, first.jobId);
    // Its lapse not claimed yet: its record is still there.
    const second = (await until(() => lease(main, agent("again"), block)))!;
    await main.reportProvingJobSuccess(second, result);
    await expect(main.reportProvingJobSuccess(first, result)).rejects.toThrow(/lost/);
  });
});

describe("the attempt cap", () => {
  it("fails a job after maxJobAttempts failed attempts across agents and operators", async () => {
    const block = await oneJobBlock();
    const capped = await openBroker({ maxJobAttempts: 3 });
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      // A new operator each time: no agent or operator bar applies.
      const a = agent(`op${i}`, `0x${"b".repeat(39)}${i}`);
      const l = (await until(() => lease(capped, a, block)))!;
      const out = await capped.reportProvingJobError(l, "flaky", true);
      outcomes.push(out.lost ? "lost" : out.status);
    }
    expect(outcomes).toEqual(["requeued", "requeued", "failed"]);
    expect(await lease(capped, agent("later", `0x${"c".repeat(40)}`), block)).toBeNull();
    const counts = await capped.fabric.counts(block);
    expect(counts.base.failed).toBe(1);
  });

  it("fails a job whose last attempt lapsed when it is next taken, leasing nothing", async () => {
    const block = await oneJobBlock();
    const b = await openBroker({ maxJobAttempts: 1 });
    const l = (await lease(b, agent("lapser"), block))!;
    await lockGone(b, l.jobId);
    const [lapse] = await b.claimTimedOutJob(l.jobId);
    expect(lapse).toMatchObject({ forgiven: false, capped: true });
    // Back in its queue (BullMQ's stalled check), then failed by whoever takes it next.
    const next = agent("next", `0x${"f".repeat(40)}`);
    const out = await until(async () => {
      const o = await b.getProvingJob(next, [block], Date.now());
      return o.failed.length > 0 ? o : null;
    });
    expect(out).toMatchObject({ failed: [l.jobId] });
    expect(out.leased).toBeUndefined();
    expect((await b.fabric.counts(block)).base.failed).toBe(1);
  });

  it("does not count a fail that could not hand its job back, however often it is sent", async () => {
    // The gateway marks the job's row in Postgres before the move: with Postgres out of reach
    // the fail is answered with an error, and the agent sends it again.
    const block = await oneJobBlock();
    const b = await openBroker({ maxJobAttempts: 5, maxRetryableFailsPerAgent: 3 });
    const l = (await until(() => lease(b, agent("honest"), block)))!;
    const unreachable = () => Promise.reject(new Error("database out of reach"));
    for (let i = 0; i < 4; i++) {
      await expect(
        b.reportProvingJobError(l, "backend crashed", true, unreachable),
      ).rejects.toThrow("database out of reach");
    }
    expect(await b.fabric.attempts.jobFails(block, l.jobId)).toBe(0);
    // Once the row can be marked: one fail, counted once, and the job back in its queue.
    const out = await b.reportProvingJobError(l, "backend crashed", true, async () => {});
    expect(out).toMatchObject({ lost: false, status: "requeued", retriesLeft: 2 });
    expect(await b.fabric.attempts.jobFails(block, l.jobId)).toBe(1);
    expect(await lease(b, agent("next", `0x${"9".repeat(40)}`), block)).not.toBeNull();
  });

  it("counts bad proofs, and bars an operator across its worker ids", async () => {
    const block = await oneJobBlock();
    const b = await openBroker({ maxJobAttempts: 10, maxJobFailsPerOperator: 2 });
    const operator = `0x${"d".repeat(40)}`;
    for (let i = 0; i < 2; i++) {
      const l = (await until(() => lease(b, agent(`id${i}`, operator), block)))!;
      expect(await b.rejectProvingJobResult(l)).toMatchObject({ lost: false, status: "requeued" });
    }
    // A fresh worker id of the same operator is not offered the job; another operator is.
    expect(await lease(b, agent("fresh", operator), block)).toBeNull();
    expect(await lease(b, agent("other", `0x${"e".repeat(40)}`), block)).not.toBeNull();
  });
});
