import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { simProof } from "@prover-boost/core";
import type { LeasedJob } from "@prover-boost/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execBackend } from "./exec.ts";

const simProofUrl = new URL("../../../../packages/core/src/sim-proof.ts", import.meta.url).href;
const proofsUrl = new URL("../../../../packages/proofs/src/index.ts", import.meta.url).href;

// Scripts are plain ESM run by `node` (process.execPath); the sim prover imports the repo's
// simProof through tsx so that it computes exactly what the relay checks.
const scripts = {
  "prove.mjs": `
    import { simProof } from ${JSON.stringify(simProofUrl)};
    let text = "";
    process.stdin.setEncoding("utf8");
    for await (const chunk of process.stdin) text += chunk;
    const { job } = JSON.parse(text);
    const proof = simProof({
      type: job.type, blockNumber: job.blockNumber, level: job.level, index: job.index,
      inputs: job.inputs, children: job.children.map((c) => c.output),
    });
    process.stdout.write(proof + "\\n");
  `,
  // A real prover: reads the node, proves it with honk, prints { proof, publicInputs }; with
  // "other" it proves the node next to it instead (a wrong proof).
  "prove-honk.mjs": `
    import { createProofSystem } from ${JSON.stringify(proofsUrl)};
    let text = "";
    process.stdin.setEncoding("utf8");
    for await (const chunk of process.stdin) text += chunk;
    const input = JSON.parse(text);
    if (input.version !== 1 || input.circuit !== "prover_boost_block_root") process.exit(3);
    const node = process.argv[2] === "other" ? { ...input.node, index: input.node.index + 1 } : input.node;
    const system = createProofSystem("honk");
    const out = await system.prove(node);
    await system.close();
    process.stdout.write(JSON.stringify(out) + "\\n");
  `,
  "sleep.mjs": `
    import { writeFileSync } from "node:fs";
    if (process.argv[3] === "ignore-term") process.on("SIGTERM", () => {});
    writeFileSync(process.argv[2], String(process.pid));
    setTimeout(() => {}, 60_000);
  `,
  "garbage.mjs": `process.stdout.write("this is not a proof\\n");`,
  "env.mjs": `
    import { writeFileSync } from "node:fs";
    const seen = ["OPERATOR_KEY", "PB_OPERATOR_KEY", "OPERATOR_KEY_FILE", "PATH"].map(
      (k) => k + "=" + (process.env[k] === undefined ? "unset" : "set"),
    );
    writeFileSync(process.argv[2], seen.join(","));
    process.exit(1);
  `,
  // An agent that starts a prover (sleep.mjs) and exits without closing its backend, as on a
  // second Ctrl-C or past its shutdown grace.
  "agent-exits.mjs": `
    import { existsSync } from "node:fs";
    const { execBackend } = await import(process.argv[2]);
    const backend = execBackend({
      command: process.execPath,
      args: [process.argv[3], process.argv[4], "ignore-term"],
      timeoutMs: 600_000,
    });
    backend.prove(JSON.parse(process.argv[5]), new AbortController().signal).catch(() => {});
    while (!existsSync(process.argv[4])) await new Promise((r) => setTimeout(r, 20));
    process.exit(1);
  `,
  "fail.mjs": `process.stderr.write("prover exploded: out of memory\\n"); process.exit(1);`,
};

let dir: string;
const script = (name: keyof typeof scripts) => join(dir, name);

/** Whether `pid` still runs (a zombie, exited but not yet reaped by its new parent, does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no procfs: signal 0 answered
  }
}

async function waitForFile(path: string): Promise<void> {
  for (let i = 0; i < 600 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
}

const job: LeasedJob = {
  id: "9:0:0",
  type: "block_root",
  blockNumber: 9,
  level: 0,
  index: 0,
  inputs: [],
  proofSystem: "sim",
  children: [
    { id: "9:1:0", output: `0x${"ab".repeat(32)}`, proof: `0x${"ab".repeat(32)}` },
    { id: "9:1:1", output: `0x${"cd".repeat(32)}`, proof: `0x${"cd".repeat(32)}` },
  ],
  leaseExpiresAt: Date.now() + 60_000,
};

const signal = () => new AbortController().signal;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "worker-exec-"));
  for (const [name, body] of Object.entries(scripts)) writeFileSync(join(dir, name), body);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("execBackend", () => {
  it("feeds the job JSON on stdin and returns the proof from stdout", async () => {
    const backend = execBackend({
      command: process.execPath,
      args: ["--import", "tsx", script("prove.mjs")],
      timeoutMs: 30_000,
    });
    const proof = await backend.prove(job, signal());
    expect(proof.publicInputs).toEqual([]);
    expect(proof.proof).toBe(
      simProof({
        type: job.type,
        blockNumber: job.blockNumber,
        level: job.level,
        index: job.index,
        inputs: job.inputs,
        children: job.children.map((c) => c.proof),
      }),
    );
  });

  it("kills the child and rejects on timeout", async () => {
    const pidFile = join(dir, "timeout.pid");
    const backend = execBackend({
      command: process.execPath,
      args: [script("sleep.mjs"), pidFile],
      timeoutMs: 3_000,
    });
    await expect(backend.prove(job, signal())).rejects.toThrow(/timed out after 3000 ms/);
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
  });

  it("escalates to SIGKILL when the child ignores SIGTERM", async () => {
    const pidFile = join(dir, "stubborn.pid");
    const backend = execBackend({
      command: process.execPath,
      args: [script("sleep.mjs"), pidFile, "ignore-term"],
      timeoutMs: 3_000,
      killGraceMs: 300,
    });
    await expect(backend.prove(job, signal())).rejects.toThrow(/timed out/);
    expect(alive(Number(readFileSync(pidFile, "utf8")))).toBe(false);
  });

  it("times out and kills a prover whose main process exited while its child holds stdout", async () => {
    const pidFile = join(dir, "grandchild.pid");
    const backend = execBackend({
      command: "sh",
      // The prover starts a helper that inherits stdout, then its main process exits.
      args: ["-c", `sleep 60 & echo $! > ${JSON.stringify(pidFile)}; exit 0`],
      timeoutMs: 2000,
      killGraceMs: 200,
      verify: false,
    });
    const outcome = await Promise.race([
      backend.prove(job, signal()).then(
        () => "resolved",
        (e: Error) => e.message,
      ),
      new Promise((r) => setTimeout(() => r("still pending after 20 s"), 20_000)),
    ]);
    expect(outcome).toMatch(/timed out after 2000 ms/);
    await waitForFile(pidFile);
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(pid).toBeGreaterThan(0);
    // Its stdout closes as it exits, a moment before it is gone.
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
  }, 30_000);

  it("kills the child and rejects when aborted", async () => {
    const pidFile = join(dir, "abort.pid");
    const backend = execBackend({
      command: process.execPath,
      args: [script("sleep.mjs"), pidFile],
      timeoutMs: 60_000,
    });
    const ac = new AbortController();
    const p = backend.prove(job, ac.signal);
    await waitForFile(pidFile);
    ac.abort(new Error("lease lost"));
    await expect(p).rejects.toThrow("lease lost");
    expect(alive(Number(readFileSync(pidFile, "utf8")))).toBe(false);
  });

  it("kills a prover still winding down on SIGTERM when the backend is closed", async () => {
    const pidFile = join(dir, "closing.pid");
    const backend = execBackend({
      command: process.execPath,
      args: [script("sleep.mjs"), pidFile, "ignore-term"],
      timeoutMs: 600_000,
      killGraceMs: 600_000, // its SIGKILL would come long after the program exited
    });
    const ac = new AbortController();
    const p = backend.prove(job, ac.signal).catch((e: Error) => e);
    await waitForFile(pidFile);
    const pid = Number(readFileSync(pidFile, "utf8"));
    ac.abort(new Error("worker shutting down"));
    await backend.close();
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
    expect(await p).toMatchObject({ message: "worker shutting down" });
  }, 30_000);

  it("runs the prover without the operator's key in its environment", async () => {
    const seenFile = join(dir, "env.txt");
    const names = ["OPERATOR_KEY", "PB_OPERATOR_KEY", "OPERATOR_KEY_FILE"] as const;
    const saved = names.map((k) => process.env[k]);
    process.env.OPERATOR_KEY = `0x${"11".repeat(32)}`;
    process.env.PB_OPERATOR_KEY = `0x${"22".repeat(32)}`;
    process.env.OPERATOR_KEY_FILE = "/run/secrets/operator_key";
    try {
      const backend = execBackend({
        command: process.execPath,
        args: [script("env.mjs"), seenFile],
        timeoutMs: 30_000,
      });
      await backend.prove(job, signal()).catch(() => {});
      await backend.close();
    } finally {
      names.forEach((k, i) => {
        if (saved[i] === undefined) delete process.env[k];
        else process.env[k] = saved[i];
      });
    }
    expect(readFileSync(seenFile, "utf8")).toBe(
      "OPERATOR_KEY=unset,PB_OPERATOR_KEY=unset,OPERATOR_KEY_FILE=set,PATH=set",
    );
  }, 30_000);

  it("kills its provers when the agent exits without closing the backend", async () => {
    const pidFile = join(dir, "orphan.pid");
    const agent = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        script("agent-exits.mjs"),
        new URL("./exec.ts", import.meta.url).href,
        script("sleep.mjs"),
        pidFile,
        JSON.stringify(job),
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(agent.status).toBe(1);
    const pid = Number(readFileSync(pidFile, "utf8"));
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    const left = alive(pid);
    if (left) process.kill(pid, "SIGKILL");
    expect(left).toBe(false);
  }, 60_000);

  it("rejects output that is not a hex proof", async () => {
    const backend = execBackend({
      command: process.execPath,
      args: [script("garbage.mjs")],
      timeoutMs: 30_000,
    });
    await expect(backend.prove(job, signal())).rejects.toThrow(/not a hex proof/);
  });

  it("rejects a non-zero exit with the stderr tail in the message", async () => {
    const backend = execBackend({
      command: process.execPath,
      args: [script("fail.mjs")],
      timeoutMs: 30_000,
    });
    await expect(backend.prove(job, signal())).rejects.toThrow(
      /exited with code 1: prover exploded: out of memory/,
    );
  });

  it("takes a real prover's { proof, publicInputs } and verifies it before handing it in", async () => {
    const honkJob: LeasedJob = {
      ...job,
      proofSystem: "honk",
      children: [
        { id: "9:1:0", output: `0x${"0a".repeat(32)}`, proof: `0x${"0a".repeat(32)}` },
        { id: "9:1:1", output: `0x${"0b".repeat(32)}`, proof: `0x${"0b".repeat(32)}` },
      ],
    };
    const run = (args: string[]) =>
      execBackend({
        command: process.execPath,
        args: ["--import", "tsx", script("prove-honk.mjs"), ...args],
        timeoutMs: 240_000,
      });
    const good = run([]);
    const wrong = run(["other"]);
    try {
      const proof = await good.prove(honkJob, signal());
      // block, level, index, the two children's outputs, then the output.
      expect(proof.publicInputs.length).toBe(6);
      expect(proof.publicInputs.slice(3, 5)).toEqual(honkJob.children.map((c) => c.output));
      await expect(wrong.prove(honkJob, signal())).rejects.toThrow(/does not verify with honk/);
    } finally {
      await good.close?.();
      await wrong.close?.();
    }
  }, 300_000);

  it("rejects when the command does not exist", async () => {
    const backend = execBackend({ command: join(dir, "no-such-prover"), timeoutMs: 5_000 });
    await expect(backend.prove(job, signal())).rejects.toThrow(/could not run/);
  });
});
