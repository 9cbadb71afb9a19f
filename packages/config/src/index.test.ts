// Relay settings for job scheduling, affinity holds and retry bounds: defaults, accepted values,
// refusals.
import { describe, expect, it } from "vitest";
import { aggregatorEnv, ConfigError, parseEnv, relayEnv, shutdownGraceMs } from "./index.ts";

describe("relay scheduling settings", () => {
  it("defaults to priority scheduling and 3 retryable fails per worker and job", () => {
    const env = parseEnv(relayEnv, {});
    expect(env.SCHEDULING).toBe("priority");
    expect(env.MAX_RETRYABLE_FAILS_PER_WORKER).toBe(3);
    expect(env.AFFINITY_HOLD_MS).toBe(250);
  });

  it("accepts affinity, holds from 0 (none) to 10 s, and a bound of at least 1", () => {
    const env = parseEnv(relayEnv, {
      SCHEDULING: "affinity",
      AFFINITY_HOLD_MS: "0",
      MAX_RETRYABLE_FAILS_PER_WORKER: "1",
    });
    expect(env.SCHEDULING).toBe("affinity");
    expect(env.AFFINITY_HOLD_MS).toBe(0);
    expect(env.MAX_RETRYABLE_FAILS_PER_WORKER).toBe(1);
    expect(parseEnv(relayEnv, { AFFINITY_HOLD_MS: "10000" }).AFFINITY_HOLD_MS).toBe(10_000);
  });

  it.each([
    [{ SCHEDULING: "fifo" }, "SCHEDULING"],
    [{ AFFINITY_HOLD_MS: "10001" }, "AFFINITY_HOLD_MS"],
    [{ AFFINITY_HOLD_MS: "-1" }, "AFFINITY_HOLD_MS"],
    [{ MAX_RETRYABLE_FAILS_PER_WORKER: "0" }, "MAX_RETRYABLE_FAILS_PER_WORKER"],
    [{ MAX_RETRYABLE_FAILS_PER_WORKER: "2.5" }, "MAX_RETRYABLE_FAILS_PER_WORKER"],
    [{ MAX_RETRYABLE_FAILS_PER_WORKER: "lots" }, "MAX_RETRYABLE_FAILS_PER_WORKER"],
  ])("refuses %j", (env, name) => {
    expect(() => parseEnv(relayEnv, env)).toThrow(ConfigError);
    expect(() => parseEnv(relayEnv, env)).toThrow(name);
  });
});

describe("addresses in the environment", () => {
  const checksummed = "0x52908400098527886E0F7030069857D2E4169EE7";

  it("reads SEQUENCERS checksummed or in one case, and returns them checksummed", () => {
    const env = parseEnv(relayEnv, {
      SEQUENCERS: `${checksummed}, ${checksummed.toLowerCase()}`,
    });
    expect(env.SEQUENCERS).toEqual([checksummed, checksummed]);
  });

  it("refuses a mixed-case address with a wrong EIP-55 checksum", () => {
    const wrong = checksummed.replace("E0F7", "e0F7");
    expect(() => parseEnv(relayEnv, { SEQUENCERS: wrong })).toThrow("checksum");
  });
});

describe("relay proof system settings", () => {
  it("defaults to the simulation with one verifying thread, and takes honk", () => {
    const env = parseEnv(relayEnv, {});
    expect(env.PROOF_SYSTEM).toBe("sim");
    expect(env.PROOF_VERIFY_THREADS).toBe(1);
    const honk = parseEnv(relayEnv, { PROOF_SYSTEM: "honk", PROOF_VERIFY_THREADS: "2" });
    expect(honk.PROOF_SYSTEM).toBe("honk");
    expect(honk.PROOF_VERIFY_THREADS).toBe(2);
  });

  it.each([
    [{ PROOF_SYSTEM: "groth16" }, "PROOF_SYSTEM"],
    [{ PROOF_VERIFY_THREADS: "0" }, "PROOF_VERIFY_THREADS"],
  ])("refuses %j", (env, name) => {
    expect(() => parseEnv(relayEnv, env)).toThrow(name);
  });
});

describe("SHUTDOWN_GRACE_MS", () => {
  it("defaults to 10 s, and is read under its older name SHUTDOWN_TIMEOUT_MS too", () => {
    expect(shutdownGraceMs(parseEnv(relayEnv, {}))).toBe(10_000);
    expect(shutdownGraceMs(parseEnv(aggregatorEnv, { SHUTDOWN_GRACE_MS: "25000" }))).toBe(25_000);
    expect(shutdownGraceMs(parseEnv(relayEnv, { SHUTDOWN_TIMEOUT_MS: "3000" }))).toBe(3000);
    // Both set: the new name wins.
    const both = parseEnv(relayEnv, { SHUTDOWN_GRACE_MS: "0", SHUTDOWN_TIMEOUT_MS: "3000" });
    expect(shutdownGraceMs(both)).toBe(0);
  });

  it.each(["-1", "1.5", "soon"])("refuses %j", (value) => {
    expect(() => parseEnv(relayEnv, { SHUTDOWN_GRACE_MS: value })).toThrow("SHUTDOWN_GRACE_MS");
  });
});
