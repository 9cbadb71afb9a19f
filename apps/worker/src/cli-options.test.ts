// The worker's shutdown budget: SHUTDOWN_GRACE_MS (or --shutdown-grace-ms) and the drain inside it.
import { describe, expect, it } from "vitest";
import {
  buildProgram,
  drainMs,
  parseOptions,
  resolveConfig,
  stopBudget,
  UsageError,
} from "./cli-options.ts";

const key = `0x${"11".repeat(32)}`;

function configOf(args: string[], env: Record<string, string> = {}) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return resolveConfig(parseOptions(buildProgram().exitOverride(), ["--key", key, ...args]));
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

describe("the worker's shutdown grace", () => {
  it("defaults to 10 s, read from --shutdown-grace-ms or SHUTDOWN_GRACE_MS", () => {
    expect(configOf([]).shutdownGraceMs).toBe(10_000);
    expect(configOf(["--shutdown-grace-ms", "25000"]).shutdownGraceMs).toBe(25_000);
    expect(configOf([], { SHUTDOWN_GRACE_MS: "4000" }).shutdownGraceMs).toBe(4000);
  });

  it("refuses a value that is not an integer of at least a second", () => {
    expect(() => configOf(["--shutdown-grace-ms=-5"])).toThrow(UsageError);
    // No time to hand the jobs back: each would lapse as a withholding.
    expect(() => configOf(["--shutdown-grace-ms", "0"])).toThrow("1000..2147483647");
    expect(() => configOf(["--shutdown-grace-ms", "999"])).toThrow("1000..2147483647");
    expect(configOf(["--shutdown-grace-ms", "1000"]).shutdownGraceMs).toBe(1000);
    expect(() => configOf(["--shutdown-grace-ms", "soon"])).toThrow("--shutdown-grace-ms");
  });

  it("refuses a grace or a job time limit longer than Node's longest timer", () => {
    expect(configOf(["--shutdown-grace-ms", "2147483647"]).shutdownGraceMs).toBe(2_147_483_647);
    expect(() => configOf(["--shutdown-grace-ms", "2147483648"])).toThrow("1000..2147483647");
    const exec = ["--backend", "exec", "--exec-command", "prove"];
    expect(() => configOf(exec, { EXEC_TIMEOUT_MS: "3000000000" })).toThrow("1..2147483647");
    expect(configOf(exec, { EXEC_TIMEOUT_MS: "2147483647" }).exec?.timeoutMs).toBe(2_147_483_647);
  });

  it("leaves jobs part of the grace and keeps the rest (half, at most 5 s) for handing back", () => {
    expect(drainMs(10_000)).toBe(5000);
    expect(drainMs(30_000)).toBe(25_000);
    expect(drainMs(4000)).toBe(2000);
    expect(drainMs(1)).toBe(1);
    expect(drainMs(0)).toBe(0);
    for (const grace of [0, 1, 999, 4000, 9999, 10_000, 60_000]) {
      expect(drainMs(grace)).toBeLessThanOrEqual(grace);
      expect(grace - drainMs(grace)).toBeLessThanOrEqual(5000);
    }
  });

  it("splits the reserve: hand-backs, then the sign-out, with time to spare inside the grace", () => {
    expect(stopBudget(10_000)).toEqual({ graceMs: 5000, handBackMs: 2750, signOutMs: 1250 });
    expect(stopBudget(30_000)).toEqual({ graceMs: 25_000, handBackMs: 2750, signOutMs: 1250 });
    expect(stopBudget(4000)).toEqual({ graceMs: 2000, handBackMs: 1000, signOutMs: 500 });
    for (const grace of [1000, 4000, 9999, 10_000, 60_000, 2_147_483_647]) {
      const b = stopBudget(grace);
      expect(b.handBackMs).toBeGreaterThan(0);
      expect(b.signOutMs).toBeGreaterThan(0);
      // What is left is spare: at least a quarter of the reserve, or a second.
      const spare = grace - b.graceMs - b.handBackMs - b.signOutMs;
      expect(spare).toBeGreaterThanOrEqual(Math.min(1000, Math.floor((grace - b.graceMs) / 4)));
    }
  });
});

describe("an empty environment variable", () => {
  it("is unset: the option takes its default", () => {
    const config = configOf([], {
      WAIT_MS: "",
      SHUTDOWN_GRACE_MS: "  ",
      WORKERS: "",
      CAPACITY: "",
      TIER: "",
      BACKEND: "",
      LOG_LEVEL: " ",
      METRICS_PORT: "",
      METRICS_HOST: "",
      EXEC_TIMEOUT_MS: "",
      JOB_TYPES: "",
      SIM_DURATIONS: "",
      PROVE_THREADS: "",
      WORKER_NAME_PREFIX: "",
      RELAY_URL: "",
      OPERATOR_KEY_FILE: "",
    });
    expect(config).toMatchObject({
      relayUrl: "http://127.0.0.1:8080",
      workers: 1,
      capacity: 1,
      tier: 0,
      backend: "sim",
      waitMs: configOf([]).waitMs,
      shutdownGraceMs: 10_000,
      logLevel: "info",
      metricsPort: 0,
      metricsHost: "127.0.0.1",
      simDurationsMs: {},
    });
    expect(config.proveThreads).toBeUndefined();
    expect(config.namePrefix).toBeUndefined();
  });

  it("still gives way to a flag, and a variable with a value still counts", () => {
    expect(configOf(["--wait-ms", "250"], { WAIT_MS: "" }).waitMs).toBe(250);
    expect(configOf([], { WAIT_MS: "", SHUTDOWN_GRACE_MS: "4000" }).shutdownGraceMs).toBe(4000);
  });
});

describe("--calibrate-system", () => {
  const exec = ["--backend", "exec", "--exec-command", "prove"];
  it("defaults to the backend's own system, sim for exec", () => {
    expect(configOf(["--calibrate"]).calibrateSystem).toBe("sim");
    expect(configOf(["--calibrate", "--backend", "honk"]).calibrateSystem).toBe("honk");
    expect(configOf(["--calibrate", ...exec]).calibrateSystem).toBe("sim");
  });

  it("lets an exec prover be calibrated on the system it proves", () => {
    expect(configOf(["--calibrate", "--calibrate-system", "honk", ...exec]).calibrateSystem).toBe(
      "honk",
    );
  });

  it("is refused where it could not apply", () => {
    // The sim and honk backends prove their own system's jobs only.
    expect(() => configOf(["--calibrate", "--calibrate-system", "honk"])).toThrow(
      "--calibrate-system honk is for --backend exec",
    );
    expect(() =>
      configOf(["--calibrate", "--backend", "honk", "--calibrate-system", "sim"]),
    ).toThrow(UsageError);
    expect(() => configOf(["--calibrate-system", "honk", ...exec])).toThrow(
      "--calibrate-system is for --calibrate only",
    );
    expect(() => configOf(["--calibrate", "--calibrate-system", "plonk", ...exec])).toThrow();
  });
});
