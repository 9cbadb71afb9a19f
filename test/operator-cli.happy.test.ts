// The operator CLI as an operator runs it: `prover-boost` (bin/prover-boost.mjs) in a child
// process against a relay on real Postgres and Redis. The bidding agent runs one round at a time
// (--once), so nothing here waits on a timer.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { defaultJobWeights } from "@prover-boost/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { priceAuction } from "../apps/worker/src/operator/pricing.ts";
import { openAuction } from "./fixtures.ts";
import { type Stack, startStack } from "./harness.ts";
import { jsonLines, repoRoot, runCli } from "./support/operator-cli.ts";

const root = repoRoot;
const operatorKey = `0x${"0b".repeat(32)}` as const;

const run = runCli;
const lines = jsonLines;

let stack: Stack;
let dir: string;
let env: Record<string, string>;
let operator: `0x${string}`;
const policy = { feeFloorWeiPerWeight: "100000000000", maxBond: "5000" };

async function writeConfig(name: string, capacity: number) {
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify({ ...policy, capacity }));
  return file;
}

async function bidsOf(blockNumber: number) {
  return stack.db.prisma.bid.findMany({ where: { blockNumber, prover: operator } });
}

beforeAll(async () => {
  stack = await startStack({ env: { RATE_LIMIT_PER_IP: "0" } });
  dir = await mkdtemp(path.join(tmpdir(), "pb-cli-"));
  await writeFile(path.join(dir, "operator.key"), `${operatorKey}\n`, { mode: 0o600 });
  const { privateKeyToAccount } = await import("viem/accounts");
  operator = privateKeyToAccount(operatorKey).address;
  await stack.admin.deposit(operator, 1_000_000n);
  env = {
    PB_RELAY_URL: stack.url,
    PB_OPERATOR_KEY_FILE: path.join(dir, "operator.key"),
    PB_BID_STATE: path.join(dir, "bids.json"),
  };
  const now = Date.now();
  for (const blockNumber of [1, 2]) {
    const a = await openAuction(blockNumber, {
      biddingClosesAt: now + 3_600_000,
      proofDeadline: now + 7_200_000,
    });
    await stack.client.openAuction(a.auction, a.txs, a.signature);
  }
  // Over the max bond: never bid on.
  const big = await openAuction(3, {
    minBond: "5001",
    biddingClosesAt: now + 3_600_000,
    proofDeadline: now + 7_200_000,
  });
  await stack.client.openAuction(big.auction, big.txs, big.signature);
}, 120_000);

afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("prover-boost CLI", () => {
  it("--help and --version exit 0", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    for (const cmd of ["worker", "bid", "cancel", "status"]) expect(help.stdout).toContain(cmd);
    const version = await run(["--version"]);
    expect(version.code).toBe(0);
    const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8"));
    expect(version.stdout.trim()).toBe(pkg.version);
    const worker = await run(["worker", "--help"]);
    expect(worker.code).toBe(0);
    expect(worker.stdout).toContain("--backend");
    expect(worker.stdout).toMatch(/^Usage: prover-boost worker /);
    expect(worker.stdout).toContain("prover-boost worker --relay http://relay:8080");
  });

  it("exits 2 on a bad bid config or a missing key", async () => {
    await writeFile(path.join(dir, "bad.json"), JSON.stringify({ ...policy, capacity: 0 }));
    const bad = await run(["bid", "--once", "--config", path.join(dir, "bad.json")], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bid config: capacity/);
    const noKey = await run(["status", "--relay", stack.url]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/operator key is required/);
  });

  it("bid bids within its price rule up to its capacity, then cancels when over it", async () => {
    const one = await run(["bid", "--once", "--config", await writeConfig("one.json", 1)], env);
    expect(one.stderr).toBe("");
    expect(one.code).toBe(0);
    const events = lines(one.stdout);
    const expected = priceAuction(
      { txCount: 4, blockReward: 10n ** 18n, minBond: 1000n, maxFeeBps: 3000 },
      {
        feeFloorWeiPerWeight: BigInt(policy.feeFloorWeiPerWeight),
        maxBond: 5000n,
        capacity: 1,
        jobWeights: defaultJobWeights,
      },
    );
    expect(expected).toMatchObject({ bid: true, basisPointFee: 3 });
    expect(events).toContainEqual(
      expect.objectContaining({ event: "bid", blockNumber: 1, basisPointFee: 3 }),
    );
    expect(events).toContainEqual({ event: "skip", blockNumber: 2, reason: "capacity" });
    const [bid1] = await bidsOf(1);
    expect(bid1).toMatchObject({ status: "active", basisPointFee: 3 });
    expect(bid1!.bondAmount.toString()).toBe("1000");
    expect(await bidsOf(2)).toHaveLength(0);

    // More capacity: block 2 gets a bid; block 3's bond is over the max, never bid on.
    const two = await run(["bid", "--once", "--config", await writeConfig("two.json", 2)], env);
    expect(two.code).toBe(0);
    expect(lines(two.stdout)).toContainEqual(
      expect.objectContaining({ event: "bid", blockNumber: 2 }),
    );
    expect(lines(two.stdout)).toContainEqual({
      event: "skip",
      blockNumber: 3,
      reason: "bond_above_max",
    });
    expect(await bidsOf(3)).toHaveLength(0);

    // Capacity taken (down to 1 with two open bids): the newest bid is withdrawn.
    const back = await run(["bid", "--once", "--config", path.join(dir, "one.json")], env);
    expect(back.code).toBe(0);
    expect(lines(back.stdout)).toContainEqual(
      expect.objectContaining({ event: "cancel", blockNumber: 2 }),
    );
    expect((await bidsOf(2))[0]?.status).toBe("cancelled");
    // Block 1's bid was kept, never placed again.
    expect((await bidsOf(1)).map((b) => b.status)).toEqual(["active"]);
  });

  it("status prints the operator's collateral and bids", async () => {
    const { code, stdout, stderr } = await run(["status"], env);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const [s] = lines(stdout);
    const prover = await stack.client.getProver(operator);
    expect(s).toMatchObject({ address: operator, collateral: prover.collateral });
    expect(prover.collateral.deposited).toBe("1000000");
    const bids = s!.bids as { open: { blockNumber: number; bidId: string }[] };
    expect(bids.open.map((b) => b.blockNumber)).toEqual([1]);
    expect(bids.open[0]!.bidId).toBe((await bidsOf(1))[0]!.id);
  });

  it("a state file is one prover's: status of another address lists none of it, another key's bid refuses it", async () => {
    const other = `0x${"0c".repeat(32)}` as const;
    const { privateKeyToAccount } = await import("viem/accounts");
    const otherAddress = privateKeyToAccount(other).address;
    const status = await run(["status", "--address", otherAddress], env);
    expect(status.code, status.stderr).toBe(0);
    expect((lines(status.stdout)[0]!.bids as { open: unknown[] }).open).toEqual([]);
    const before = await readFile(env.PB_BID_STATE!, "utf8");
    const config = await writeConfig("other.json", 2);
    const bid = await run(["bid", "--once", "--config", config], {
      ...env,
      PB_OPERATOR_KEY_FILE: "",
      OPERATOR_KEY: other,
    });
    expect(bid.code).toBe(2);
    expect(bid.stderr).toMatch(/records the bids of 0x[0-9a-fA-F]{40}, not of 0x/);
    expect(await readFile(env.PB_BID_STATE!, "utf8")).toBe(before);
    expect(await stack.db.prisma.bid.count({ where: { prover: otherAddress } })).toBe(0);
  });

  it("takes an empty variable as unset, as the worker agent and the services do", async () => {
    // compose's `${OPERATOR_KEY:-}` beside a key file: no "both keys given" refusal.
    const { code, stdout, stderr } = await run(["status"], { ...env, OPERATOR_KEY: " " });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(lines(stdout)[0]).toMatchObject({ address: operator });
  });

  it("cancel withdraws one bid; a key on argv prints a warning", async () => {
    const { code, stdout, stderr } = await run(
      ["cancel", "1", "--relay", stack.url, "--key", operatorKey, "--state", env.PB_BID_STATE!],
      {},
    );
    expect(stderr).toMatch(/warning: a private key given on the command line/);
    expect(code).toBe(0);
    expect(lines(stdout)[0]).toMatchObject({ blockNumber: 1, status: "cancelled" });
    expect((await bidsOf(1))[0]?.status).toBe("cancelled");
    const again = await run(["cancel", "1"], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no bid on block 1/);
  });
});
