// Every error the system throws on purpose shares one base: a stable code, the cause, and a
// retryable flag where retrying can help.
import { ConfigError, parseEnv, relayEnv } from "@prover-boost/config";
import { DomainError, ProverBoostError } from "@prover-boost/core";
import { InsufficientBalanceError } from "@prover-boost/db";
import { AnvilUnavailableError, EscrowDeployError } from "@prover-boost/escrow";
import { SolidityCompileError } from "@prover-boost/escrow/compile";
import { AgentAtCapacityError, LeaseLostError } from "@prover-boost/queue";
import { isRetryableRequestError, RelayError } from "@prover-boost/sdk";
import { describe, expect, it } from "vitest";
import { ProbeTimeout } from "../apps/aggregator/src/rebuild.ts";
import { RedisUnavailableError } from "../apps/devnet/src/redis-server.ts";
import { UsageError } from "../apps/worker/src/cli-options.ts";
import { BackendError, isRetryable, JobAbort } from "../apps/worker/src/errors.ts";

describe("error hierarchy", () => {
  it("every error class extends ProverBoostError with a stable code", () => {
    const errors: [ProverBoostError, string, string][] = [
      [new DomainError("NOT_FOUND", "x"), "DomainError", "NOT_FOUND"],
      [new ConfigError("x"), "ConfigError", "CONFIG_INVALID"],
      [new InsufficientBalanceError("a", 1n), "InsufficientBalanceError", "INSUFFICIENT_BALANCE"],
      [new LeaseLostError("x"), "LeaseLostError", "LEASE_LOST"],
      [new AgentAtCapacityError("x"), "AgentAtCapacityError", "CAPACITY_EXCEEDED"],
      [new BackendError("x"), "BackendError", "BACKEND_FAILED"],
      [new JobAbort("shutdown", "x"), "AbortError", "JOB_ABORTED"],
      [new UsageError("x"), "UsageError", "USAGE"],
      [new RedisUnavailableError("x"), "RedisUnavailableError", "REDIS_UNAVAILABLE"],
      [new ProbeTimeout("x"), "ProbeTimeout", "PROBE_TIMEOUT"],
      [new AnvilUnavailableError("x"), "AnvilUnavailableError", "ANVIL_UNAVAILABLE"],
      [new EscrowDeployError("x"), "EscrowDeployError", "ESCROW_DEPLOY_FAILED"],
      [new SolidityCompileError("x"), "SolidityCompileError", "SOLIDITY_COMPILE_FAILED"],
      [new RelayError(404, "JOB_NOT_FOUND", "x"), "RelayError", "JOB_NOT_FOUND"],
    ];
    for (const [err, name, code] of errors) {
      expect(err).toBeInstanceOf(ProverBoostError);
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe(name);
      expect(err.code).toBe(code);
    }
  });

  it("marks as retryable only what may succeed when tried again", () => {
    expect(new BackendError("x").retryable).toBe(true);
    expect(new BackendError("x", false).retryable).toBe(false);
    expect(new AgentAtCapacityError("x").retryable).toBe(true);
    expect(new LeaseLostError("x").retryable).toBe(false);
    expect(new ConfigError("x").retryable).toBe(false);
    expect(new ProbeTimeout("x").retryable).toBe(true);
    expect(new RelayError(429, "RATE_LIMITED", "x").retryable).toBe(true);
    expect(new RelayError(503, "UNAVAILABLE", "x").retryable).toBe(true);
    expect(new RelayError(422, "INVALID_PROOF", "x").retryable).toBe(false);
    expect(new RelayError(500, "INTERNAL", "x").retryable).toBe(false);
    expect(isRetryableRequestError(new TypeError("fetch failed"))).toBe(true);
    expect(isRetryableRequestError(new RelayError(409, "LEASE_LOST", "x"))).toBe(false);
    expect(isRetryableRequestError("not an error")).toBe(false);
  });

  it("fails a job for good only on a backend's own verdict", () => {
    expect(isRetryable(new BackendError("bad witness", false))).toBe(false);
    expect(isRetryable(new BackendError("out of memory"))).toBe(true);
    // Other errors carry a retryable flag about their own operation, not the job's.
    expect(isRetryable(new JobAbort("shutdown", "stopping"))).toBe(true);
    expect(isRetryable(new RelayError(422, "INVALID_PROOF", "x"))).toBe(true);
    expect(isRetryable(new Error("plain"))).toBe(true);
    expect(isRetryable({ retryable: false })).toBe(false);
  });

  it("keeps the cause", () => {
    const cause = new Error("inner");
    expect(new BackendError("x", true, { cause }).cause).toBe(cause);
    expect(new LeaseLostError("x", { cause }).cause).toBe(cause);
    expect(new RelayError(503, "UNAVAILABLE", "x", "req", { cause }).cause).toBe(cause);
  });

  it("parseEnv throws a ConfigError", () => {
    expect(() => parseEnv(relayEnv, { PORT: "not a port" })).toThrow(ConfigError);
  });
});
