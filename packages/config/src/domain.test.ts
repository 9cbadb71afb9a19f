// The signing domain a service may start with, and the job types' least hardware tiers.
import { describe, expect, it } from "vitest";
import { aggregatorEnv, boundDomainFromEnv, ConfigError, parseEnv, relayEnv } from "./index.ts";

const bound = {
  CHAIN_ID: "31337",
  VERIFYING_CONTRACT: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
};

describe("boundDomainFromEnv", () => {
  it("gives the four-field domain when CHAIN_ID and VERIFYING_CONTRACT are set, without a warning", () => {
    const warnings: string[] = [];
    const domain = boundDomainFromEnv(parseEnv(relayEnv, bound), (m) => warnings.push(m));
    expect(domain).toEqual({
      name: "Aztec Rollup",
      version: "1",
      chainId: 31337n,
      verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    });
    expect(warnings).toEqual([]);
  });

  it.each([
    ["relay", relayEnv],
    ["aggregator", aggregatorEnv],
  ] as const)(
    "refuses the %s an unbound domain unless the legacy domain is explicit",
    (_n, schema) => {
      const warnings: string[] = [];
      expect(() => boundDomainFromEnv(parseEnv(schema, {}), (m) => warnings.push(m))).toThrow(
        ConfigError,
      );
      expect(() =>
        boundDomainFromEnv(parseEnv(schema, { EIP712_LEGACY_DOMAIN: "false" }), () => {}),
      ).toThrow(/CHAIN_ID and VERIFYING_CONTRACT are required/);
      const legacy = parseEnv(schema, { EIP712_LEGACY_DOMAIN: "true" });
      expect(boundDomainFromEnv(legacy, (m) => warnings.push(m))).toEqual({
        name: "Aztec Rollup",
        version: "1",
      });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/replay/);
    },
  );

  it("refuses EIP712_LEGACY_DOMAIN values other than true and false", () => {
    expect(() => parseEnv(relayEnv, { EIP712_LEGACY_DOMAIN: "yes" })).toThrow(
      "EIP712_LEGACY_DOMAIN",
    );
  });
});

describe("JOB_MIN_TIER", () => {
  it("defaults every job type to tier 0", () => {
    expect(parseEnv(relayEnv, {}).JOB_MIN_TIER).toEqual({
      base: 0,
      merge: 0,
      block_root: 0,
      single_tx_block_root: 0,
      empty_block_root: 0,
    });
  });

  it("sets the listed types and leaves the others at 0", () => {
    expect(parseEnv(relayEnv, { JOB_MIN_TIER: "block_root=2, merge=1" }).JOB_MIN_TIER).toEqual({
      base: 0,
      merge: 1,
      block_root: 2,
      single_tx_block_root: 0,
      empty_block_root: 0,
    });
  });

  it.each(["root=1", "base=256", "base=-1", "base", "base=1.5"])("refuses %j", (value) => {
    expect(() => parseEnv(relayEnv, { JOB_MIN_TIER: value })).toThrow("JOB_MIN_TIER");
  });
});
