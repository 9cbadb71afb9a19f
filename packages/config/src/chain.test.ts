// Chain-mode settings: ledger stays the default, chain mode needs its L1 and escrow, and the
// aggregator's settler key comes from exactly one of SETTLER_KEY and SETTLER_KEY_FILE.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { aggregatorEnv, ConfigError, parseEnv, relayEnv, settlerKeyFromEnv } from "./index.ts";

const escrow = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const key = `0x${"ab".repeat(32)}`;
const dir = mkdtempSync(path.join(tmpdir(), "pb-settler-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("COLLATERAL", () => {
  it("defaults to the ledger, with one confirmation", () => {
    const env = parseEnv(relayEnv, {});
    expect(env.COLLATERAL).toBe("ledger");
    expect(env.L1_CONFIRMATIONS).toBe(1);
    expect([env.L1_POLL_MS, env.L1_LOG_RANGE, env.L1_START_BLOCK]).toEqual([1000, 1000, 0]);
    expect([env.L1_MAX_REORG_DEPTH, env.L1_STALE_MS]).toEqual([64, 10_000]);
    const agg = parseEnv(aggregatorEnv, {});
    expect([agg.SETTLER_RETRY_BASE_MS, agg.SETTLER_RETRY_MAX_MS]).toEqual([500, 30_000]);
    expect(settlerKeyFromEnv(parseEnv(aggregatorEnv, {}))).toBeUndefined();
  });

  it("chain mode reads the L1, the escrow (checksummed) and the confirmations", () => {
    const env = parseEnv(relayEnv, {
      COLLATERAL: "chain",
      L1_RPC_URL: "http://127.0.0.1:8545",
      ESCROW_ADDRESS: escrow.toLowerCase(),
      L1_CONFIRMATIONS: "3",
    });
    expect(env.ESCROW_ADDRESS).toBe(escrow);
    expect(env.L1_CONFIRMATIONS).toBe(3);
  });

  it.each([
    [{ COLLATERAL: "chain" }, "L1_RPC_URL and ESCROW_ADDRESS"],
    [{ COLLATERAL: "chain", L1_RPC_URL: "http://127.0.0.1:8545" }, "ESCROW_ADDRESS"],
    [{ COLLATERAL: "both" }, "COLLATERAL"],
    [{ L1_RPC_URL: "ftp://x" }, "L1_RPC_URL"],
    // The services speak JSON-RPC over HTTP: a websocket URL would pass here and fail every call.
    [{ L1_RPC_URL: "wss://l1.example/ws" }, "must be an http:// or https:// URL"],
    [{ L1_RPC_URL: "ws://127.0.0.1:8545" }, "L1_RPC_URL"],
    [{ ESCROW_ADDRESS: "0x12" }, "ESCROW_ADDRESS"],
    [{ L1_CONFIRMATIONS: "0" }, "L1_CONFIRMATIONS"],
    [{ L1_MAX_REORG_DEPTH: "0" }, "L1_MAX_REORG_DEPTH"],
    [{ L1_LOG_RANGE: "0" }, "L1_LOG_RANGE"],
  ])("refuses %j", (env, what) => {
    expect(() => parseEnv(relayEnv, env)).toThrow(ConfigError);
    expect(() => parseEnv(relayEnv, env)).toThrow(what);
  });
});

describe("the settler key", () => {
  const chain = {
    COLLATERAL: "chain",
    L1_RPC_URL: "http://127.0.0.1:8545",
    ESCROW_ADDRESS: escrow,
  };

  it("comes from SETTLER_KEY or from the first line of SETTLER_KEY_FILE", () => {
    expect(settlerKeyFromEnv(parseEnv(aggregatorEnv, { ...chain, SETTLER_KEY: key }))).toBe(key);
    const file = path.join(dir, "settler.key");
    writeFileSync(file, `${key}\n`);
    expect(settlerKeyFromEnv(parseEnv(aggregatorEnv, { ...chain, SETTLER_KEY_FILE: file }))).toBe(
      key,
    );
  });

  it("is required in chain mode, alone, and well formed", () => {
    expect(() => settlerKeyFromEnv(parseEnv(aggregatorEnv, chain))).toThrow(/SETTLER_KEY/);
    const file = path.join(dir, "both.key");
    writeFileSync(file, key);
    expect(() =>
      settlerKeyFromEnv(
        parseEnv(aggregatorEnv, { ...chain, SETTLER_KEY: key, SETTLER_KEY_FILE: file }),
      ),
    ).toThrow(/not both/);
    const bad = path.join(dir, "bad.key");
    writeFileSync(bad, "0x1234\n");
    expect(() =>
      settlerKeyFromEnv(parseEnv(aggregatorEnv, { ...chain, SETTLER_KEY_FILE: bad })),
    ).toThrow(/64 hex/);
    expect(() =>
      settlerKeyFromEnv(
        parseEnv(aggregatorEnv, { ...chain, SETTLER_KEY_FILE: path.join(dir, "none") }),
      ),
    ).toThrow(/cannot be read/);
    expect(() => parseEnv(aggregatorEnv, { ...chain, SETTLER_KEY: "0x12" })).toThrow(/SETTLER_KEY/);
  });
});
