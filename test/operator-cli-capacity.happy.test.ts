// The bidding agent counts blocks it won and has not proven yet against its capacity: once a won
// block takes it, the agent withdraws its open bids and bids on nothing new. The auction is
// closed by the aggregator's close step called here, not by waiting for its closing time.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAuction } from "../apps/aggregator/src/close-auctions.ts";
import { openAuction } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { jsonLines, runCli } from "./support/operator-cli.ts";

const operatorKey = `0x${"0c".repeat(32)}` as const;
const operator = privateKeyToAccount(operatorKey).address;
let stack: Stack;
let dir: string;
let env: Record<string, string>;

async function open(blockNumber: number) {
  const now = Date.now();
  const a = await openAuction(blockNumber, {
    biddingClosesAt: now + 3_600_000,
    proofDeadline: now + 7_200_000,
  });
  await stack.client.openAuction(a.auction, a.txs, a.signature);
}

beforeAll(async () => {
  stack = await startStack({ aggregator: false, env: { RATE_LIMIT_PER_IP: "0" } });
  dir = await mkdtemp(path.join(tmpdir(), "pb-cli-cap-"));
  await writeFile(path.join(dir, "operator.key"), operatorKey, { mode: 0o600 });
  await writeFile(
    path.join(dir, "bid.json"),
    JSON.stringify({ feeFloorWeiPerWeight: "1", maxBond: "5000", capacity: 2 }),
  );
  await writeFile(
    path.join(dir, "one.json"),
    JSON.stringify({ feeFloorWeiPerWeight: "1", maxBond: "5000", capacity: 1 }),
  );
  await stack.admin.deposit(operator, 1_000_000n);
  env = {
    PB_RELAY_URL: stack.url,
    PB_OPERATOR_KEY_FILE: path.join(dir, "operator.key"),
    PB_BID_STATE: path.join(dir, "bids.json"),
  };
}, 120_000);

afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("prover-boost bid: capacity taken by a won block", () => {
  it("withdraws its open bids and bids on nothing new", async () => {
    await open(1);
    await open(2);
    const first = await runCli(["bid", "--once", "--config", path.join(dir, "bid.json")], env);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(jsonLines(first.stdout).filter((e) => e.event === "bid")).toHaveLength(2);

    await closeAuction(stack.aggregator.ctx, 1, Date.now());
    const won = await stack.db.prisma.bid.findFirst({
      where: { blockNumber: 1, prover: operator },
    });
    expect(won?.status).toBe("won");
    await open(3);

    // Capacity 1, held by the won block 1 (not proven): block 2's bid goes, block 3 is skipped.
    const second = await runCli(["bid", "--once", "--config", path.join(dir, "one.json")], env);
    expect(second.code).toBe(0);
    const events = jsonLines(second.stdout);
    expect(events).toContainEqual(expect.objectContaining({ event: "cancel", blockNumber: 2 }));
    expect(events).toContainEqual({ event: "skip", blockNumber: 3, reason: "capacity" });
    expect(events.filter((e) => e.event === "bid")).toHaveLength(0);
    const bid2 = await stack.db.prisma.bid.findFirst({
      where: { blockNumber: 2, prover: operator },
    });
    expect(bid2?.status).toBe("cancelled");
    expect(await stack.db.prisma.bid.count({ where: { blockNumber: 3 } })).toBe(0);
  });
});
