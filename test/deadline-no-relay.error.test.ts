// No relay able to serve while a block is being proven, with the aggregator reaching Redis and
// Postgres throughout: every relay gone (a crash loop, a bad rollout), or Redis refusing writes
// (maxmemory reached: PING still answers, but the relays' writes fail and they answer 503). The
// winner's workers can neither lease nor hand in proofs, so that time is the system's fault: the
// block is not slashed at its original deadline, and the deadline moves by the time no relay
// was present (deadlines.ts). Once a relay is present again, a winner that still withholds is
// slashed at the moved deadline. That holds when the aggregator was stopped too throughout the
// gap, and comes back only after a relay did: the relay that ended the gap logged it, and the
// aggregator credits it when it starts.
import { createAggregator } from "@prover-boost/aggregator";
import { aggregatorEnv, parseEnv } from "@prover-boost/config";
import { createRelay, type Relay } from "@prover-boost/relay";
import { RelayClient } from "@prover-boost/sdk";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { sightRelays } from "../apps/aggregator/src/relays.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, relayError, signIn } from "./support/blocks.ts";
import { BIDDING_MS, DEPOSIT, freePort, opA, startRedisServer } from "./support/state-loss.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});

/** LEASE_MS 2000: a relay refreshes its presence every 500 ms and counts for 1000 ms after. */
const LEASE_MS = "2000";
/** The winner's proving window left once its tree is out. */
const WINDOW_MS = 4000;

async function stackWithWinner(env: Record<string, string> = {}): Promise<Stack> {
  // The rate limiter counts in Redis; the test is about deadlines, not the limiter's outage.
  const stack = await startStack({ env: { LEASE_MS, RATE_LIMIT_PER_IP: "0", ...env } });
  cleanups.push(() => stack.close());
  await stack.admin.deposit(opA.address, DEPOSIT);
  return stack;
}

async function startRelay(stack: Stack): Promise<{ relay: Relay; client: RelayClient }> {
  const relay = await createRelay(stack.relay.env, { db: stack.db });
  await relay.app.listen({ port: 0, host: "127.0.0.1" });
  const address = relay.app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { relay, client: new RelayClient({ baseUrl: `http://127.0.0.1:${port}` }) };
}

/** Opens block `n` for opA to win, proving WINDOW_MS from its close; returns its deadline. */
async function openWinnersBlock(stack: Stack, n: number): Promise<number> {
  const open = await openBlock(stack, n, {
    winner: opA,
    txCount: 2,
    biddingMs: BIDDING_MS,
    proofDeadlineInMs: BIDDING_MS + WINDOW_MS,
  });
  return open.auction.proofDeadline;
}

const blockRow = (stack: Stack, n: number) =>
  stack.db.prisma.block.findUniqueOrThrow({ where: { number: n } });

/**
 * Waits past the block's original deadline (by more than a relay's presence bound and several
 * ticks) and checks the winner was not slashed: the block waits, its outage open.
 */
async function expectHeldPastDeadline(stack: Stack, n: number, deadline: number) {
  await eventually(async () => Date.now() > deadline + 2500, 60_000, 100);
  const during = await blockRow(stack, n);
  expect(during.stage).toBe("proving");
  expect(during.fabricDownSince).not.toBeNull();
  expect(await stack.db.prisma.penalty.findMany({ where: { blockNumber: n } })).toEqual([]);
}

/** Waits for the outage to be closed (credited); returns the block and when that was seen. */
async function outageCredited(stack: Stack, n: number) {
  const block = await eventually(async () => {
    const b = await blockRow(stack, n);
    return b.fabricDownSince === null || b.stage !== "proving" ? b : null;
  }, 30_000);
  return { block, seenAt: Date.now() };
}

/** The winner withholds to the end: slashed once, at the moved deadline and not before. */
async function expectSlashedAtMovedDeadline(stack: Stack, n: number, deadline: number) {
  const slashed = await eventually(async () => {
    const b = await blockRow(stack, n);
    return b.stage === "open_proving" ? b : null;
  }, 60_000);
  const stages = slashed.stages as Record<string, number>;
  expect(stages.deadline_missed).toBeGreaterThanOrEqual(deadline + Number(slashed.fabricDownMs));
  const slashes = await stack.db.prisma.penalty.findMany({
    where: { blockNumber: n, kind: "slash" },
  });
  expect(slashes.map((p) => p.operator)).toEqual([opA.address]);
}

describe("every relay gone while the aggregator reaches Redis and Postgres", () => {
  it("does not slash at the original deadline, moves it by the time no relay was present, then slashes a winner still silent", async () => {
    const BLOCK = 411;
    const stack = await stackWithWinner();
    const deadline = await openWinnersBlock(stack, BLOCK);
    // What the fan-out credited (the bidding close to the tree's fan-out).
    const before = await blockRow(stack, BLOCK);
    expect(before.fabricDownSince).toBeNull();

    // The only relay goes away; nobody can lease or hand in a proof.
    const downAt = Date.now();
    await stack.relay.close();
    await expectHeldPastDeadline(stack, BLOCK, deadline);

    // A relay is present again: the outage is credited to the deadline.
    const upAt = Date.now();
    const second = await startRelay(stack);
    cleanups.push(() => second.relay.close());
    const { block, seenAt } = await outageCredited(stack, BLOCK);
    expect(block.stage).toBe("proving");
    const credit = Number(block.fabricDownMs - before.fabricDownMs);
    // From the last relay's last presence refresh (at most a refresh period before it went) to
    // the aggregator's sight of the new one.
    expect(credit).toBeGreaterThanOrEqual(upAt - downAt);
    expect(credit).toBeLessThanOrEqual(seenAt - downAt + 1000);
    const view = await second.client.getBlock(BLOCK);
    expect([view.proofDeadline, view.deadlinePaused]).toEqual([
      deadline + Number(block.fabricDownMs),
      false,
    ]);

    await expectSlashedAtMovedDeadline(stack, BLOCK, deadline);
  }, 120_000);
});

describe("Redis refuses writes (maxmemory) while it answers PING", () => {
  it("counts the relays as absent: no slash at the original deadline, the deadline moves, then the slash", async () => {
    const BLOCK = 412;
    const port = await freePort();
    const server = await startRedisServer(port);
    cleanups.push(async () => {
      if (server.exitCode === null) server.kill("SIGKILL");
    });
    const redisUrl = `redis://127.0.0.1:${port}`;
    const stack = await stackWithWinner({ REDIS_URL: redisUrl });
    const deadline = await openWinnersBlock(stack, BLOCK);
    const before = await blockRow(stack, BLOCK);

    const worker = await signIn(stack, opA, "a-1");
    const admin = new Redis(redisUrl);
    cleanups.push(async () => admin.disconnect());
    // Redis is full (noeviction, its default): every write is refused, reads and PING answer.
    const fullAt = Date.now();
    await admin.config("SET", "maxmemory", "1");
    expect(await admin.ping()).toBe("PONG");
    await expectHeldPastDeadline(stack, BLOCK, deadline);
    // The relay is up, but it cannot serve the winner's workers.
    expect((await relayError(worker.client.lease(0))).status).toBe(503);

    const freedAt = Date.now();
    await admin.config("SET", "maxmemory", "0");
    const { block, seenAt } = await outageCredited(stack, BLOCK);
    expect(block.stage).toBe("proving");
    const credit = Number(block.fabricDownMs - before.fabricDownMs);
    expect(credit).toBeGreaterThanOrEqual(freedAt - fullAt);
    expect(credit).toBeLessThanOrEqual(seenAt - fullAt + 1000);

    await expectSlashedAtMovedDeadline(stack, BLOCK, deadline);
  }, 120_000);
});

describe("every relay gone while the aggregator was stopped too, a relay back before it", () => {
  it.each([
    [413, "", false],
    [414, ", and once only with the tree lost meanwhile", true],
  ])(
    "credits the gap when the aggregator starts: no slash at the original deadline, then the slash at the moved one (block %i%s)",
    async (BLOCK, _what, treeLost) => {
      const stack = await stackWithWinner();
      const deadline = await openWinnersBlock(stack, BLOCK);
      const before = await blockRow(stack, BLOCK);
      expect(before.stage).toBe("proving");
      // The whole deployment goes down (a host restart, say): the aggregator, then the relay.
      await stack.aggregator.aggregator.stop();
      const downAt = Date.now();
      await stack.relay.close();
      await eventually(async () => Date.now() > deadline + 2500, 60_000, 100);
      // Redis came back from an old snapshot, without the block's tree: the new aggregator rebuilds
      // it in the same pass as it credits the gap, and counts no stretch twice.
      if (treeLost) await stack.aggregator.ctx.fabric.clearTree(BLOCK);
      // A relay comes back first, well past the original deadline, then a new aggregator process.
      const upAt = Date.now();
      const second = await startRelay(stack);
      cleanups.push(() => second.relay.close());
      const aggregator = await createAggregator(parseEnv(aggregatorEnv, stack.env), {
        db: stack.db,
      });
      cleanups.push(() => aggregator.close());
      // The relay serves before the aggregator's first look: it never sees the gap live.
      await eventually(async () => (await sightRelays(aggregator.ctx)).present);
      await aggregator.aggregator.tick();
      const startedAt = Date.now();
      const block = await blockRow(stack, BLOCK);
      expect(block.stage).toBe("proving");
      expect(await stack.db.prisma.penalty.findMany({ where: { blockNumber: BLOCK } })).toEqual([]);
      const credit = Number(block.fabricDownMs - before.fabricDownMs);
      // From the relay's last presence refresh (at most a refresh period before it went) to the
      // new relay's first refresh able to serve.
      expect(credit).toBeGreaterThanOrEqual(upAt - downAt);
      expect(credit).toBeLessThanOrEqual(startedAt - downAt + 1000);
      // Its later ticks credit nothing more.
      await aggregator.aggregator.tick();
      expect((await blockRow(stack, BLOCK)).fabricDownMs).toBe(block.fabricDownMs);

      aggregator.aggregator.start();
      await expectSlashedAtMovedDeadline(stack, BLOCK, deadline);
    },
    120_000,
  );
});
