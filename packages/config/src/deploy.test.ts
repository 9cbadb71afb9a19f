// Settings a deployment needs: secrets read from files (`<NAME>_FILE`, as compose and Kubernetes
// mount them) and whom the relay believes about the client's address (TRUST_PROXY).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { aggregatorEnv, ConfigError, fileVariables, parseEnv, relayEnv } from "./index.ts";

const dir = mkdtempSync(path.join(tmpdir(), "pb-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const secret = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

describe("<NAME>_FILE secrets", () => {
  it("cover the admin token and the connection URLs", () => {
    expect([...fileVariables].sort()).toEqual(["ADMIN_TOKEN", "DATABASE_URL", "REDIS_URL"]);
  });

  it("read ADMIN_TOKEN, DATABASE_URL and REDIS_URL from files, trimmed", () => {
    const env = parseEnv(relayEnv, {
      ADMIN_TOKEN_FILE: secret("admin", "s3cret-token-value\n"),
      DATABASE_URL_FILE: secret("db", "postgresql://pb:pw@db:5432/pb\n"),
      REDIS_URL_FILE: secret("redis", "  redis://:pw@redis:6379\r\n"),
    });
    expect(env.ADMIN_TOKEN).toBe("s3cret-token-value");
    expect(env.DATABASE_URL).toBe("postgresql://pb:pw@db:5432/pb");
    expect(env.REDIS_URL).toBe("redis://:pw@redis:6379");
    // The aggregator reads the same files.
    const agg = parseEnv(aggregatorEnv, { DATABASE_URL_FILE: path.join(dir, "db") });
    expect(agg.DATABASE_URL).toBe("postgresql://pb:pw@db:5432/pb");
  });

  it("leave the plain variables alone when no file is named", () => {
    const env = parseEnv(relayEnv, { ADMIN_TOKEN: "plain", ADMIN_TOKEN_FILE: "" });
    expect(env.ADMIN_TOKEN).toBe("plain");
    expect(parseEnv(relayEnv, {}).ADMIN_TOKEN).toBeUndefined();
  });

  it.each([
    [
      { ADMIN_TOKEN: "x", ADMIN_TOKEN_FILE: "/nonexistent" },
      "set ADMIN_TOKEN or ADMIN_TOKEN_FILE, not both",
    ],
    [{ ADMIN_TOKEN_FILE: path.join(dir, "missing") }, "ADMIN_TOKEN_FILE cannot be read"],
    [{ DATABASE_URL_FILE: dir }, "DATABASE_URL_FILE cannot be read"],
    [{ REDIS_URL_FILE: secret("blank", " \n\n") }, "REDIS_URL_FILE is empty"],
  ])("refuse %o", (env, message) => {
    expect(() => parseEnv(relayEnv, env)).toThrow(ConfigError);
    expect(() => parseEnv(relayEnv, env)).toThrow(message);
  });

  it("never put a file's contents in the error", () => {
    const file = secret("both", "top-secret-value");
    try {
      parseEnv(relayEnv, { ADMIN_TOKEN: "other", ADMIN_TOKEN_FILE: file });
      expect.unreachable();
    } catch (err) {
      expect(String((err as Error).message)).not.toContain("top-secret-value");
      expect(String((err as Error).message)).not.toContain("other");
    }
  });
});

describe("TRUST_PROXY", () => {
  it("is off by default", () => {
    expect(parseEnv(relayEnv, {}).TRUST_PROXY).toBe(false);
    expect(parseEnv(relayEnv, { TRUST_PROXY: "" }).TRUST_PROXY).toBe(false);
    expect(parseEnv(relayEnv, { TRUST_PROXY: "false" }).TRUST_PROXY).toBe(false);
  });

  it("takes true, a hop count or a list of addresses and CIDR ranges", () => {
    expect(parseEnv(relayEnv, { TRUST_PROXY: "true" }).TRUST_PROXY).toBe(true);
    expect(parseEnv(relayEnv, { TRUST_PROXY: "2" }).TRUST_PROXY).toBe(2);
    expect(
      parseEnv(relayEnv, { TRUST_PROXY: "10.0.0.0/8, 127.0.0.1,::1,fd00::/8" }).TRUST_PROXY,
    ).toEqual(["10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8"]);
  });

  it.each([
    "yes",
    "0",
    "33",
    "proxy.internal",
    "10.0.0.0/8,,nope",
    "10.0.0/8",
    "10.0.0.0/33",
    "::1/129",
  ])("refuses %s", (value) => {
    expect(() => parseEnv(relayEnv, { TRUST_PROXY: value })).toThrow(/TRUST_PROXY/);
  });
});
