// Two aggregators (an old and a new one during a restart's overlap) re-issuing the same failed
// job in open proving: the one that finds it already back in its queue leaves it alone, neither
// failing its tick nor counting a re-issue it did not make (which would reach MAX_JOB_REISSUES,
// and its backoff, twice as fast). On real Postgres and Redis.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REISSUE_BATCH, reissueInOpenProving } from "../apps/aggregator/src/deadlines.ts";
import { fanOutClosedBlocks } from "../apps/aggregator/src/fan-out.ts";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { signIn } from "./support/blocks.ts";
import { closeUnclaimed } from "./support/unclaimed.ts";

let stack: Stack;
const op = account(0x2e155);
const op2 = account(0x2e156);
beforeAll(async () => {
  stack = await startStack({ aggregator: false, env: { RATE_LIMIT_PER_IP: "0" } });
  await stack.admin.deposit(op.address, 10n ** 18n);
  await stack.admin.deposit(op2.address, 10n ** 18n);
});
afterAll(async () => stack?.close());

describe("a failed job put back by another aggregator first", () => {
  it("is left alone, not counted, and the pass goes on", async () => {
    await closeUnclaimed(stack, [40], { txCount: 1 });
    const ctx = stack.aggregator.ctx;
    await fanOutClosedBlocks(ctx);
    const w = await signIn(stack, op, "failer");
    const job = await eventually(() => w.client.lease(500));
    await w.client.failJob(job.id, "cannot prove this", false);
    const fabric = ctx.fabric;
    const counted: string[] = [];
    const out = await fabric.retryFailed(
      40,
      async () => {
        // The other aggregator gets there first.
        expect(await fabric.retryFailed(40)).toEqual([job.id]);
        return true;
      },
      (id) => {
        counted.push(id);
      },
    );
    expect(out).toEqual([]);
    expect(counted).toEqual([]);
    // It is back in its queue, once: another operator's worker leases it.
    const other = await signIn(stack, op2, "prover");
    const again = await eventually(() => other.client.lease(500));
    expect(again.id).toBe(job.id);
  });
});

describe("open-proving blocks whose failed jobs wait out their backoff", () => {
  it("do not fill every pass: the blocks after them are re-issued in turn", async () => {
    const ctx = stack.aggregator.ctx;
    // One block more than a pass takes, every one but the last waiting out its backoff.
    const blocks = Array.from({ length: REISSUE_BATCH + 1 }, (_, i) => 50 + i);
    const last = blocks.at(-1)!;
    await closeUnclaimed(stack, blocks, { txCount: 1 });
    while ((await fanOutClosedBlocks(ctx)) > 0);
    const w = await signIn(stack, op, "failer-2");
    const failed = new Set<string>();
    while (failed.size < blocks.length) {
      const job = await eventually(() => w.client.lease(500));
      await w.client.failJob(job.id, "cannot prove this", false);
      failed.add(job.id);
    }
    for (const n of blocks.slice(0, -1)) {
      for (let i = 0; i < ctx.config.reissues.max; i++) {
        await ctx.fabric.attempts.reissued(n, `${n}-1-0`, Date.now());
      }
    }
    const status = async (n: number) =>
      (await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: `${n}-1-0` } })).status;
    // The passes go round the blocks with failed jobs: the last comes up within a few.
    const cursor = { after: -1 };
    for (let i = 0; i < 3 && (await status(last)) !== "queued"; i++) {
      await reissueInOpenProving(ctx, cursor);
    }
    expect(await status(last)).toBe("queued");
    for (const n of blocks.slice(0, -1)) expect(await status(n)).toBe("failed");
  });
});
