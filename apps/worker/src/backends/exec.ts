// The exec backend: runs an external prover once per job (docs/proofs.md has the contract). The
// child's stdin gets one JSON document: the node to prove, its proof system and circuit, the
// public inputs its proof must carry before its output, and the leased job; the child prints the
// proof on stdout, as one JSON object { proof, publicInputs } (or, for sim, a 0x-hex line), and
// exits 0. The result is verified with the block's proof system before it is handed in, so a
// wrong proof is caught here rather than penalized by the relay.
// No shell is involved. The child runs in its own process group so that on timeout or abort the
// whole group (including anything it started) gets SIGTERM, then SIGKILL after a grace period.
import { type ChildProcess, spawn } from "node:child_process";
import {
  circuitNames,
  createProofPool,
  createProofSystem,
  nodeInputs,
  type ProofSystem,
  type ProofSystemName,
} from "@prover-boost/proofs";
import type { LeasedJob } from "@prover-boost/sdk";
import type { Hex } from "viem";
import { BackendError } from "../errors.ts";
import { abortReason } from "../timing.ts";
import type { BackendProof, ProofBackend } from "../types.ts";
import { proofNodeOfJob } from "./system.ts";

export interface ExecBackendOptions {
  /** Executable to run (looked up on PATH; no shell). */
  command: string;
  args?: string[];
  /** Per-job time limit, ms. */
  timeoutMs: number;
  /** Time between SIGTERM and SIGKILL, ms; default 5000. */
  killGraceMs?: number;
  /** Largest stdout accepted, bytes; default 64 MiB. */
  maxOutputBytes?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Verify each result with the block's proof system before handing it in; default true. */
  verify?: boolean;
}

/** What the child reads on stdin (version 1 of the exec contract). */
export function execInput(job: LeasedJob, circuit: string) {
  const node = proofNodeOfJob(job);
  let publicInputs: string[] = [];
  if (job.proofSystem !== "sim") {
    try {
      publicInputs = nodeInputs(node);
    } catch {
      publicInputs = [];
    }
  }
  return { version: 1, proofSystem: job.proofSystem, circuit, node, publicInputs, job };
}

const HEX_PROOF = /^0x[0-9a-fA-F]+$/;
const FIELD = /^0x[0-9a-fA-F]{64}$/;

/** `{ proof, publicInputs }` from a prover's JSON output, or null when it is not that. */
function jsonProof(text: string): BackendProof | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const { proof, publicInputs = [] } = v as { proof?: unknown; publicInputs?: unknown };
  if (typeof proof !== "string" || !HEX_PROOF.test(proof)) return null;
  if (!Array.isArray(publicInputs)) return null;
  if (!publicInputs.every((f) => typeof f === "string" && FIELD.test(f))) return null;
  return { proof: proof as Hex, publicInputs: publicInputs as Hex[] };
}
const STDERR_TAIL_CHARS = 2000;
/** After SIGKILL, how long to wait for the child's stdio to close before settling anyway. */
const SETTLE_AFTER_KILL_MS = 2000;

/**
 * Signals the child's whole process group. The group is signalled even once the child itself has
 * exited: a process it started may still run (and hold stdout). The group id cannot be reused while
 * any of its members lives, and the caller stops signalling once the child's stdio has closed.
 */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (process.platform !== "win32" && child.pid !== undefined) {
    try {
      process.kill(-child.pid, signal);
      return;
    } catch {
      // No such group (all gone): fall through to the child itself, a no-op once it exited.
    }
  }
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
}

/**
 * The environment a prover runs with by default: the agent's, without the operator's key. A
 * third-party prover (or its crash dump) has no business with it; a file holding it is named
 * only by path, and kept.
 */
export function proverEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out.OPERATOR_KEY;
  delete out.PB_OPERATOR_KEY;
  return out;
}

/** An exec backend always answers with a checked proof and its public inputs. */
export interface ExecBackend extends ProofBackend {
  prove(job: LeasedJob, signal: AbortSignal): Promise<BackendProof>;
  close(): Promise<void>;
}

export function execBackend(options: ExecBackendOptions): ExecBackend {
  const { command, args = [], timeoutMs } = options;
  const killGraceMs = options.killGraceMs ?? 5000;
  const maxOutputBytes = options.maxOutputBytes ?? 64 * 1024 * 1024;
  const label = JSON.stringify(command);
  // Verifiers by proof system, made on first use: real proofs on a thread of their own.
  const systems = new Map<ProofSystemName, ProofSystem>();
  const systemOf = (name: ProofSystemName): ProofSystem => {
    let s = systems.get(name);
    if (!s) {
      s = name === "sim" ? createProofSystem("sim") : createProofPool(name, { maxThreads: 1 });
      systems.set(name, s);
    }
    return s;
  };
  const checked = async (job: LeasedJob, out: Hex | BackendProof): Promise<BackendProof> => {
    const proof = typeof out === "string" ? { proof: out, publicInputs: [] } : out;
    if (options.verify === false) return proof;
    if (!(await systemOf(job.proofSystem).verify(proofNodeOfJob(job), proof))) {
      throw new BackendError(
        `exec backend: the proof from ${label} does not verify with ${job.proofSystem}; not submitted`,
      );
    }
    return proof;
  };

  /** Provers still running (or whose group may still run): close() kills them. */
  const running = new Set<ChildProcess>();
  const killAll = () => {
    for (const child of running) killGroup(child, "SIGKILL");
    running.clear();
  };
  // Each prover runs in a process group of its own, which the agent's own end does not take
  // down: an agent that exits without close() (a second Ctrl-C, its shutdown grace over) kills
  // them as it goes (an exit listener runs synchronously, as process.kill does).
  process.on("exit", killAll);

  return {
    name: `exec:${command}`,
    async close() {
      // A prover still running (one slow to honour SIGTERM within its grace) is killed now: the
      // program may exit right after, and nothing would be left to send it SIGKILL.
      process.off("exit", killAll);
      killAll();
      const all = [...systems.values()];
      systems.clear();
      await Promise.all(all.map((s) => s.close()));
    },
    async prove(job: LeasedJob, signal: AbortSignal): Promise<BackendProof> {
      const circuit = job.proofSystem === "sim" ? `sim/${job.type}` : circuitNames[job.type];
      const out = await run(`${JSON.stringify(execInput(job, circuit))}\n`, signal);
      return checked(job, out);
    },
  };

  function run(input: string, signal: AbortSignal): Promise<Hex | BackendProof> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    return new Promise<Hex | BackendProof>((resolve, reject) => {
      const child = spawn(command, args, {
        cwd: options.cwd,
        env: options.env ?? proverEnv(process.env),
        stdio: ["pipe", "pipe", "pipe"],
        detached: process.platform !== "win32",
        shell: false,
      });
      running.add(child);
      const stdout: Buffer[] = [];
      let stdoutBytes = 0;
      let stderr = "";
      /** Set once we decided to kill the child: the error to reject with when it is gone. */
      let killError: Error | undefined;
      let killTimer: NodeJS.Timeout | undefined;
      let settled = false;

      const terminate = (err: Error) => {
        if (killError) return;
        killError = err;
        killGroup(child, "SIGTERM");
        killTimer = setTimeout(() => {
          killGroup(child, "SIGKILL");
          // Settled even if the child's stdio never closes (a process that escaped the group
          // still holding it): the job must not hang on it.
          killTimer = setTimeout(() => {
            child.stdout?.destroy();
            child.stderr?.destroy();
            finish(err);
          }, SETTLE_AFTER_KILL_MS);
          killTimer.unref();
        }, killGraceMs);
        killTimer.unref();
      };
      const onAbort = () => terminate(abortReason(signal));
      const timer = setTimeout(
        () => terminate(new BackendError(`exec backend: ${label} timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      signal.addEventListener("abort", onAbort, { once: true });

      const finish = (err: Error | undefined, proof?: Hex | BackendProof) => {
        if (settled) return;
        settled = true;
        running.delete(child);
        clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        signal.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(proof!);
      };

      child.stdout!.on("data", (chunk: Buffer) => {
        stdoutBytes += chunk.length;
        if (stdoutBytes > maxOutputBytes) {
          terminate(
            new BackendError(`exec backend: ${label} wrote more than ${maxOutputBytes} bytes`),
          );
        } else stdout.push(chunk);
      });
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (chunk: string) => {
        stderr = (stderr + chunk).slice(-STDERR_TAIL_CHARS);
      });
      child.stdin!.on("error", () => {}); // a child that does not read its stdin is fine
      child.stdin!.end(input);

      child.on("error", (err) => {
        finish(
          new BackendError(`exec backend: could not run ${label}: ${err.message}`, true, {
            cause: err,
          }),
        );
      });
      child.on("close", (code, sig) => {
        if (killError) return finish(killError);
        const tail = stderr.trim();
        const detail = tail.length > 0 ? `: ${tail}` : "";
        if (code !== 0) {
          const how = code === null ? `was killed by ${sig}` : `exited with code ${code}`;
          return finish(new BackendError(`exec backend: ${label} ${how}${detail}`));
        }
        const out = Buffer.concat(stdout).toString("utf8").trim();
        if (out.startsWith("{")) {
          const parsed = jsonProof(out);
          if (parsed) return finish(undefined, parsed);
          return finish(
            new BackendError(
              `exec backend: the JSON output of ${label} was not { "proof": "0x..", "publicInputs": ["0x<32 bytes>", ...] }`,
            ),
          );
        }
        if (!HEX_PROOF.test(out)) {
          const shown = out.length > 80 ? `${out.slice(0, 80)}...` : out;
          return finish(
            new BackendError(
              `exec backend: the output of ${label} was not a hex proof (expected 0x + hex on stdout, got ${JSON.stringify(shown)})`,
            ),
          );
        }
        finish(undefined, out as Hex);
      });
    });
  }
}
