// The CLI as a user runs it: a child process (node --import tsx src/cli.ts).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const cli = fileURLToPath(new URL("./cli.ts", import.meta.url));
const cwd = fileURLToPath(new URL("..", import.meta.url));

function run(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(process.execPath, ["--import", "tsx", cli, ...args], {
    cwd,
    encoding: "utf8",
    timeout: 240_000,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe("prover-boost-worker CLI", () => {
  it("--help prints usage", () => {
    const { code, stdout } = run(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("Usage: prover-boost-worker");
    for (const flag of ["--relay", "--key-file", "--workers", "--backend", "--calibrate"]) {
      expect(stdout).toContain(flag);
    }
  });

  it("takes PB_ aliases over the unprefixed names, as prover-boost worker does", () => {
    // The prefixed value is the one validated: a bad PB_CAPACITY fails over a good CAPACITY...
    const bad = run(["--calibrate"], { CAPACITY: "2", PB_CAPACITY: "0" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--capacity must be a positive integer, got "0"/);
    // ...and PB_OPERATOR_KEY_FILE is the key file read (here one that does not exist).
    const missing = "/nonexistent/pb-operator.key";
    const key = run([], {
      OPERATOR_KEY_FILE: "/nonexistent/plain.key",
      PB_OPERATOR_KEY_FILE: missing,
    });
    expect(key.code).toBe(2);
    expect(key.stderr).toContain(`cannot read --key-file ${missing}`);
  });

  it("warns when the key is given on the command line, not when it is in a file", () => {
    const onArgv = run(["--workers", "abc", "--key", `0x${"11".repeat(32)}`]);
    expect(onArgv.stderr).toMatch(/warning: a private key given on the command line/);
    const inFile = run(["--workers", "abc", "--key-file", "/nonexistent/k"]);
    expect(inFile.code).toBe(2);
    expect(inFile.stderr).not.toMatch(/warning/);
  });

  it("--calibrate prints one line per job type", () => {
    const durations = "base=5,merge=5,block_root=5,single_tx_block_root=5,empty_block_root=5";
    const { code, stdout, stderr } = run([
      "--calibrate",
      "--backend",
      "sim",
      "--sim-durations",
      durations,
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const lines = stdout.trim().split("\n");
    for (const type of [
      "base",
      "merge",
      "block_root",
      "single_tx_block_root",
      "empty_block_root",
    ]) {
      const line = lines.find((l) => l.startsWith(`${type} `));
      expect(line, `a line for ${type}`).toBeDefined();
      const [, runs, mean, min, max] = line!.trim().split(/\s+/).map(Number);
      expect(runs).toBe(5);
      expect(min).toBeGreaterThanOrEqual(3);
      expect(min).toBeLessThanOrEqual(mean!);
      expect(mean).toBeLessThanOrEqual(max!);
    }
  });

  it("starts with empty variables, which count as unset (as the relay and aggregator read them)", () => {
    const durations = "base=1,merge=1,block_root=1,single_tx_block_root=1,empty_block_root=1";
    const { code, stdout, stderr } = run(["--calibrate", "--sim-durations", durations], {
      WAIT_MS: "",
      SHUTDOWN_GRACE_MS: "",
      BACKEND: "",
      PB_LOG_LEVEL: "",
      METRICS_PORT: " ",
    });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^base /m);
  });

  it("exits 2 with a message on a bad --workers", () => {
    const { code, stderr } = run(["--workers", "abc", "--key", `0x${"11".repeat(32)}`]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--workers must be a positive integer, got "abc"/);
  });

  it("exits 2 on a bad key, a missing key, and a bad env value", () => {
    expect(run(["--key", "0x1234"]).stderr).toMatch(/32-byte hex private key/);
    expect(run(["--key", "0x1234"]).code).toBe(2);
    const missing = run([]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/operator key is required/);
    const env = run(["--calibrate"], { CAPACITY: "0" });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/--capacity must be a positive integer/);
  });

  it("--calibrate --backend honk makes real proofs on a proving thread", () => {
    const { code, stdout, stderr } = run([
      "--calibrate",
      "--backend",
      "honk",
      "--job-types",
      "merge",
      "--prove-threads",
      "1",
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain("calibration with backend honk");
    const line = stdout.split("\n").find((l) => l.startsWith("merge "));
    expect(Number(line?.trim().split(/\s+/)[1])).toBe(5);
  }, 300_000);

  it("--calibrate --backend exec --calibrate-system honk hands your prover honk jobs, and checks its proofs", () => {
    // A stand-in for an operator's own prover: refuses anything but a honk job, proves it with
    // the repo's honk system (checked again by the backend before it counts).
    const dir = mkdtempSync(join(tmpdir(), "pb-calibrate-"));
    const proofs = new URL("../../../packages/proofs/src/index.ts", import.meta.url).href;
    const script = join(dir, "prove-honk.mjs");
    writeFileSync(
      script,
      `import { createProofSystem } from ${JSON.stringify(proofs)};
      let text = "";
      process.stdin.setEncoding("utf8");
      for await (const chunk of process.stdin) text += chunk;
      const input = JSON.parse(text);
      if (input.proofSystem !== "honk") process.exit(3);
      const system = createProofSystem("honk");
      const out = await system.prove(input.node);
      await system.close();
      process.stdout.write(JSON.stringify(out) + "\\n");`,
    );
    try {
      const { code, stdout, stderr } = run([
        "--calibrate",
        "--calibrate-system",
        "honk",
        "--job-types",
        "base",
        "--backend",
        "exec",
        "--exec-command",
        process.execPath,
        "--exec-args",
        "--import",
        "tsx",
        script,
      ]);
      expect(stderr).toBe("");
      expect(code).toBe(0);
      const line = stdout.split("\n").find((l) => l.startsWith("base "));
      expect(Number(line?.trim().split(/\s+/)[1])).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it("exits 2 on a bad --prove-threads", () => {
    const { code, stderr } = run(["--calibrate", "--backend", "honk", "--prove-threads", "0"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--prove-threads/);
  });

  it("exits 2 when --backend exec has no command", () => {
    const { code, stderr } = run(["--calibrate", "--backend", "exec"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--exec-command/);
  });
});
