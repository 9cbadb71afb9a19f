// Capacity and job types at the worker gateway, on real Redis and Postgres. Property: however many
// lease calls a session fires at once, and whatever it completes or hands back meanwhile, it never
// holds more live leases than its declared capacity; calls beyond it get 409 CAPACITY_EXCEEDED
// (or 204 when nothing is ready), and no job is ever leased to two sessions at once.
// Then: a session only ever gets the job types it declared.

import { createRedis } from "@prover-boost/queue";
import type { LeasedJob } from "@prover-boost/sdk";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack, TEST_REDIS_URL } from "./harness.ts";
import {
  type LeaseOutcome,
  openBlock,
  proofOf,
  type Signed,
  signIn,
  tryLease,
} from "./support/blocks.ts";

let stack: Stack;

beforeAll(async () => {
  // Long leases: nothing lapses during a run, so the live count only moves by our own calls.
  stack = await startStack({ env: { LEASE_MS: "60000", RATE_LIMIT_PER_IP: "0" } });
});
afterAll(async () => stack?.close());

interface WorkerRow {
  sessionId: string;
  capacity: number;
  leases: number;
}

async function workersOf(operator: string): Promise<Map<string, WorkerRow>> {
  const res = await fetch(`${stack.url}/v1/workers?operator=${operator}&limit=500`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { items: WorkerRow[] };
  return new Map(body.items.map((w) => [w.sessionId, w]));
}

/** What the test knows about one session: leases received, leases given up (call started). */
class Tracker {
  readonly received = new Map<string, LeasedJob>();
  readonly released = new Set<string>();
  readonly outcomes: LeaseOutcome[] = [];
  constructor(
    readonly w: Signed,
    readonly capacity: number,
  ) {}

  /** Leases received and not given up: a lower bound of what the relay counts as live. */
  held(): string[] {
    return [...this.received.keys()].filter((id) => !this.released.has(id));
  }

  async lease(): Promise<void> {
    const out = await tryLease(this.w.client, 0);
    this.outcomes.push(out);
    if (out.status === 200 && "job" in out) {
      // Never leased twice to a session that still holds it (a handed-back job may come back).
      expect(this.held()).not.toContain(out.job.id);
      this.received.set(out.job.id, out.job);
      this.released.delete(out.job.id);
      // Checked at the moment the lease is known: never more than capacity at once.
      expect(this.held().length).toBeLessThanOrEqual(this.capacity);
    }
  }

  /** Gives a held lease up: proves it or hands it back (retryable). */
  async giveUp(id: string, prove: boolean): Promise<void> {
    this.released.add(id);
    const job = this.received.get(id)!;
    if (prove) await this.w.client.submitResult(id, proofOf(job));
    else await this.w.client.failJob(id, "test hands it back", true);
  }
}

function expectOnlyAllowedOutcomes(t: Tracker) {
  for (const o of t.outcomes) {
    if (o.status === 200 || o.status === 204) continue;
    expect(o).toEqual({ status: 409, code: "CAPACITY_EXCEEDED" });
  }
}

let run = 0;

describe("capacity", () => {
  it("no session ever holds more live leases than its capacity", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }),
        async (capacities, extraCalls, proveOrHandBack) => {
          run++;
          const blockNumber = 100 + run;
          // A fresh operator wins a fresh block: only its sessions may lease there, so runs are
          // isolated. 32 txs: 32 ready base jobs, more than the 16 leases all sessions can hold.
          const op = account(0x1000 + run);
          await stack.admin.deposit(op.address, 10n ** 18n);
          await openBlock(stack, blockNumber, { txCount: 32, winner: op });
          const trackers = await Promise.all(
            capacities.map(
              async (capacity, i) =>
                new Tracker(await signIn(stack, op, `cap-${run}-${i}`, { capacity }), capacity),
            ),
          );
          const checkWorkersView = async () => {
            const rows = await workersOf(op.address);
            for (const t of trackers) {
              const row = rows.get(t.w.sessionId)!;
              expect(row.capacity).toBe(t.capacity);
              expect(row.leases).toBeLessThanOrEqual(t.capacity);
            }
          };

          // Burst 1: capacity + extra concurrent calls per session, and reads of GET /v1/workers.
          await Promise.all([
            ...trackers.flatMap((t) =>
              Array.from({ length: t.capacity + extraCalls }, () => t.lease()),
            ),
            checkWorkersView(),
            checkWorkersView(),
          ]);
          for (const t of trackers) {
            expectOnlyAllowedOutcomes(t);
            // Plenty of ready jobs: every session got exactly its capacity, the rest were refused.
            expect(t.held()).toHaveLength(t.capacity);
            expect(t.outcomes.filter((o) => o.status === 409)).toHaveLength(extraCalls);
          }
          let rows = await workersOf(op.address);
          for (const t of trackers) expect(rows.get(t.w.sessionId)!.leases).toBe(t.capacity);
          const all = trackers.flatMap((t) => t.held());
          expect(new Set(all).size).toBe(all.length);

          // Burst 2: give leases up (proof or hand-back) while more lease calls race them.
          let flip = 0;
          await Promise.all([
            ...trackers.flatMap((t) => [
              ...t
                .held()
                .slice(0, Math.ceil(t.capacity / 2))
                .map((id) => t.giveUp(id, proveOrHandBack[flip++ % 16]!)),
              ...Array.from({ length: t.capacity + extraCalls }, () => t.lease()),
            ]),
            checkWorkersView(),
          ]);
          rows = await workersOf(op.address);
          for (const t of trackers) {
            expectOnlyAllowedOutcomes(t);
            expect(t.held().length).toBeLessThanOrEqual(t.capacity);
            // Once every call has settled the relay's count is exactly what the test holds.
            expect(rows.get(t.w.sessionId)!.leases).toBe(t.held().length);
          }
          const held = trackers.flatMap((t) => t.held());
          expect(new Set(held).size).toBe(held.length);
          // The tree's records agree on who holds each job (they may trail the answer a little).
          const holder = new Map(trackers.flatMap((t) => t.held().map((id) => [id, t.w.workerId])));
          await eventually(async () => {
            const jobs = await stack.db.prisma.proofJob.findMany({ where: { id: { in: held } } });
            return (
              jobs.length === held.length && jobs.every((j) => j.workerId === holder.get(j.id))
            );
          }, 5000);
        },
      ),
      { numRuns: 12, endOnFailure: true },
    );
  });
});

describe("job types", () => {
  const blockNumber = 50;
  const op = account(0x5050);
  let baseOnly: Signed;
  let mergeOnly: Signed;
  let rootOnly: Signed;
  let singleRootOnly: Signed;

  beforeAll(async () => {
    await stack.admin.deposit(op.address, 10n ** 18n);
    // 4 txs: block_root(0) <- merge(1,0), merge(1,1) <- four bases at level 2.
    await openBlock(stack, blockNumber, { txCount: 4, winner: op });
    baseOnly = await signIn(stack, op, "types-base", { jobTypes: ["base"] });
    mergeOnly = await signIn(stack, op, "types-merge", { jobTypes: ["merge"], capacity: 2 });
    rootOnly = await signIn(stack, op, "types-root", { jobTypes: ["block_root"] });
    singleRootOnly = await signIn(stack, op, "types-single", {
      jobTypes: ["single_tx_block_root"],
    });
  });

  it("a merge-only session never gets a base job; a root-only session gets the root when ready", async () => {
    // Only bases are ready: merge- and root-only sessions get nothing.
    expect(await tryLease(mergeOnly.client, 0)).toEqual({ status: 204 });
    expect(await tryLease(rootOnly.client, 300)).toEqual({ status: 204 });

    const mergesSeen: LeasedJob[] = [];
    for (let i = 0; i < 4; i++) {
      const base = await baseOnly.client.lease(2000);
      expect(base?.type).toBe("base");
      await baseOnly.client.submitResult(base!.id, proofOf(base!));
      // Whatever the merge-only session gets is a merge.
      const got = await tryLease(mergeOnly.client, i % 2 === 1 ? 2000 : 0);
      if (got.status === 200 && "job" in got) {
        expect(got.job.type).toBe("merge");
        mergesSeen.push(got.job);
      } else {
        expect(got).toEqual({ status: 204 });
      }
      // The root is not ready while any merge is unproven.
      expect(await tryLease(rootOnly.client, 0)).toEqual({ status: 204 });
    }
    expect(await baseOnly.client.lease(0)).toBeNull();
    expect(mergesSeen.map((j) => j.level)).toEqual([1, 1]);
    for (const m of mergesSeen) await mergeOnly.client.submitResult(m.id, proofOf(m));

    // A session that declared a different root type never gets this block's block_root (the
    // root kinds share a queue: the relay takes the job and gives it back). Counting the
    // readiness announcements meanwhile shows that this does not turn into a busy loop.
    const sub = createRedis(TEST_REDIS_URL);
    let announcements = 0;
    sub.on("message", () => announcements++);
    await sub.subscribe(stack.relay.ctx.fabric.channel);
    expect(await tryLease(singleRootOnly.client, 1500)).toEqual({ status: 204 });
    await sub.quit();
    expect(announcements).toBeLessThan(50);
    const root = await rootOnly.client.lease(5000);
    expect(root).toMatchObject({ type: "block_root", level: 0, index: 0, blockNumber });
    await rootOnly.client.submitResult(root!.id, proofOf(root!));
    const block = await stack.client.getBlock(blockNumber);
    expect(["proven", "paid"]).toContain(block.stage);
  });
});
