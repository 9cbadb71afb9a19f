import { describe, expect, it } from "vitest";
import { applyEnvAliases, keyOnArgv } from "./env.ts";

describe("applyEnvAliases", () => {
  it("copies PB_ names onto the unprefixed ones, the prefixed value winning", () => {
    const env: NodeJS.ProcessEnv = {
      RELAY_URL: "http://plain",
      PB_RELAY_URL: "http://prefixed",
      PB_OPERATOR_KEY_FILE: "/k",
      OTHER: "x",
    };
    expect(applyEnvAliases(env)).toEqual(["OPERATOR_KEY_FILE", "RELAY_URL"]);
    expect(env.RELAY_URL).toBe("http://prefixed");
    expect(env.OPERATOR_KEY_FILE).toBe("/k");
    expect(env.OTHER).toBe("x");
  });

  it("leaves unprefixed names alone when no alias is set, and ignores a bare PB_", () => {
    const env: NodeJS.ProcessEnv = { RELAY_URL: "http://plain", PB_: "y" };
    expect(applyEnvAliases(env)).toEqual([]);
    expect(env).toEqual({ RELAY_URL: "http://plain", PB_: "y" });
  });

  it("treats an empty PB_ name as unset: the unprefixed one counts", () => {
    const env: NodeJS.ProcessEnv = { WAIT_MS: "5000", PB_WAIT_MS: "", PB_TIER: " " };
    expect(applyEnvAliases(env)).toEqual([]);
    expect(env.WAIT_MS).toBe("5000");
    expect(env.TIER).toBeUndefined();
  });
});

describe("keyOnArgv", () => {
  it("finds --key and --key=, not --key-file", () => {
    expect(keyOnArgv(["bid", "--key", "0x1"])).toBe(true);
    expect(keyOnArgv(["bid", "--key=0x1"])).toBe(true);
    expect(keyOnArgv(["bid", "--key-file", "k"])).toBe(false);
    expect(keyOnArgv(["bid", "--key-file=k"])).toBe(false);
  });
});
