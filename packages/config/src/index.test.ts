// Relay settings for job scheduling, affinity holds and retry bounds: defaults, accepted values,
// refusals.
import { describe, expect, it } from "vitest";
import {
  aggregatorEnv,
  ConfigError,
  commonEnv,
  MAX_DURATION_MS,
  parseEnv,
  redactUrl,
  relayEnv,
  shutdownGraceMs,
} from "./index.ts";

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
    const both = parseEnv(relayEnv, { SHUTDOWN_GRACE_MS: "500", SHUTDOWN_TIMEOUT_MS: "3000" });
    expect(shutdownGraceMs(both)).toBe(500);
  });

  // 0 would exit at once, closing nothing (a worker's leases would lapse).
  it.each(["-1", "0", "99", "1.5", "soon", "2147483648"])("refuses %j", (value) => {
    expect(() => parseEnv(relayEnv, { SHUTDOWN_GRACE_MS: value })).toThrow("SHUTDOWN_GRACE_MS");
  });
});

describe("an empty variable", () => {
  it("is unset: the default, for numbers as for strings (read as 0 it turned settings off)", () => {
    const empty = {
      PORT: "",
      HOST: " ",
      RATE_LIMIT_PER_IP: "",
      OVERLOAD_LAG_MS: "",
      SSE_STREAMS_MAX: "",
      SHUTDOWN_GRACE_MS: "",
      REDIS_PREFIX: "",
      DATA_DIR: "",
    };
    expect(parseEnv(relayEnv, empty)).toEqual(parseEnv(relayEnv, {}));
    const aggregator = parseEnv(aggregatorEnv, { METRICS_PORT: "", SLASH_TO_SEQUENCER_BPS: "" });
    expect(aggregator).toEqual(parseEnv(aggregatorEnv, {}));
  });
});

describe("bounds a service would break on", () => {
  it.each([
    [{ REDIS_COMMAND_TIMEOUT_MS: String(MAX_DURATION_MS + 1) }, "REDIS_COMMAND_TIMEOUT_MS"],
    [{ SSE_KEEPALIVE_MS: "3000000000" }, "SSE_KEEPALIVE_MS"],
    [{ LEASE_MS: "1e12" }, "LEASE_MS"],
    // Compared with timers' times only, but a limit no timer could wait for is a typo.
    [{ LEASE_MAX_MS: "3000000000" }, "LEASE_MAX_MS"],
    [{ PORT: "70000" }, "PORT"],
    [
      { CHAIN_ID: "0", VERIFYING_CONTRACT: "0x52908400098527886E0F7030069857D2E4169EE7" },
      "CHAIN_ID",
    ],
    // Read as a Number it would be another chain's id (…992).
    [
      {
        CHAIN_ID: "9007199254740993",
        VERIFYING_CONTRACT: "0x52908400098527886E0F7030069857D2E4169EE7",
      },
      "CHAIN_ID",
    ],
  ])("refuses %j", (env, name) => {
    expect(() => parseEnv(relayEnv, env)).toThrow(ConfigError);
    expect(() => parseEnv(relayEnv, env)).toThrow(name);
  });

  it("takes the longest timer Node has, and any port up to 65535", () => {
    const env = parseEnv(relayEnv, { LEASE_MS: String(MAX_DURATION_MS), PORT: "65535" });
    expect(env.LEASE_MS).toBe(MAX_DURATION_MS);
    expect(env.PORT).toBe(65_535);
  });

  it("takes longer durations that no timer is set to (a 30-day retention or session)", () => {
    const month = String(30 * 24 * 3_600_000);
    const env = parseEnv(relayEnv, { EVENTS_RETENTION_MS: month, SESSION_TTL_MS: month });
    expect(env.EVENTS_RETENTION_MS).toBe(Number(month));
    expect(env.SESSION_TTL_MS).toBe(Number(month));
  });
});

describe("service URLs", () => {
  it("refuses a malformed one without repeating it (it may hold a password)", () => {
    for (const env of [
      { DATABASE_URL: "postgresql://prover_boost:Zx9#pw/Q@postgres:5432/prover_boost" },
      { REDIS_URL: "redis://:s3cr#t/pw@redis:6379" },
      { DATABASE_URL: "mysql://u:secretpw@db/x" },
      { REDIS_URL: "http://cache:6379" },
    ]) {
      const err = (() => {
        try {
          parseEnv(commonEnv, env);
        } catch (e) {
          return e as Error;
        }
        throw new Error(`accepted ${JSON.stringify(env)}`);
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toContain(Object.keys(env)[0]);
      expect(err.message).not.toMatch(/Zx9|s3cr|secretpw/);
    }
  });

  it("takes postgres(ql):// and redis(s):// URLs, percent-encoded passwords included", () => {
    const env = parseEnv(commonEnv, {
      DATABASE_URL: "postgres://u:Zx9%23pw%2FQ@db:5432/x?schema=pb",
      REDIS_URL: "rediss://:s3cr%23t@cache:6380/0",
    });
    expect(env.DATABASE_URL).toBe("postgres://u:Zx9%23pw%2FQ@db:5432/x?schema=pb");
    expect(env.REDIS_URL).toBe("rediss://:s3cr%23t@cache:6380/0");
  });
});

describe("redactUrl", () => {
  it("masks a password, keeps everything else, and never repeats a URL that does not parse", () => {
    expect(redactUrl("redis://:s3cret@cache:6379/0")).toBe("redis://:***@cache:6379/0");
    expect(redactUrl("postgresql://app:pw@db/market?schema=x")).toBe(
      "postgresql://app:***@db/market?schema=x",
    );
    expect(redactUrl("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
    expect(redactUrl("not a url with s3cret")).not.toContain("s3cret");
  });
});
