// Child processes of a fault scenario: relays and aggregators (test/faults/children/service.ts)
// and worker pools (test/children/worker-child.ts, the simulated backend). Each is tracked so a
// scenario can kill it (SIGKILL, as a crash) or stop it (SIGTERM with a deadline, then SIGKILL:
// a service that hangs on shutdown must not hang the suite), and so that nothing outlives it.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { trackProcess } from "./registry.ts";
import { pollUntil } from "./util.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));
export const serviceScript = fileURLToPath(new URL("../children/service.ts", import.meta.url));
export const workerScript = fileURLToPath(
  new URL("../../children/worker-child.ts", import.meta.url),
);

/** How long a child may take to start: it imports the whole stack through tsx. */
const START_TIMEOUT_MS = 120_000;
/** How long a SIGTERMed child may take to exit before it is SIGKILLed. */
const STOP_DEADLINE_MS = 5_000;

export interface Child {
  name: string;
  proc: ChildProcess;
  /** Every line it printed on stdout, parsed as JSON where it is JSON. */
  lines: unknown[];
  stderr(): string;
  exited(): boolean;
  onLine(fn: (line: unknown) => void): void;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export class Children {
  private readonly all = new Set<Child>();

  spawn(name: string, script: string, env: Record<string, string>): Child {
    const proc = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: "error", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    trackProcess(proc);
    const lines: unknown[] = [];
    const listeners: ((line: unknown) => void)[] = [];
    let err = "";
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const part of parts) {
        let line: unknown = part;
        try {
          line = JSON.parse(part);
        } catch {}
        lines.push(line);
        for (const fn of listeners) fn(line);
      }
    });
    // Only the tail is kept: enough for a failure message.
    proc.stderr!.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    const exited = () => proc.exitCode !== null || proc.signalCode !== null;
    const waitExit = () =>
      new Promise<void>((resolve) => {
        if (exited()) return resolve();
        proc.once("exit", () => resolve());
      });
    const child: Child = {
      name,
      proc,
      lines,
      stderr: () => err,
      exited,
      onLine: (fn) => listeners.push(fn),
      async kill() {
        const done = waitExit();
        if (!exited()) proc.kill("SIGKILL");
        await done;
      },
      async stop() {
        const done = waitExit();
        if (!exited()) proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_DEADLINE_MS);
        await done;
        clearTimeout(timer);
      },
    };
    this.all.add(child);
    return child;
  }

  /** Waits for the first stdout line matching `ready`; fails if the child exits first. */
  async ready(child: Child, ready: (line: unknown) => boolean): Promise<unknown> {
    const dead = Symbol("dead");
    const got = await pollUntil(
      async () => child.lines.find(ready) ?? (child.exited() ? dead : null),
      START_TIMEOUT_MS,
      25,
      `${child.name} did not start`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; stderr: ${child.stderr()}`);
    });
    if (got === dead)
      throw new Error(`${child.name} exited before it was ready: ${child.stderr()}`);
    return got;
  }

  /** Stops every child still running (SIGTERM with a deadline, then SIGKILL). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.all].map((c) => c.stop()));
    this.all.clear();
  }
}
