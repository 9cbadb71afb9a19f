// Child processes in tests: waiting for one to exit, with a deadline (a test about shutdown must
// fail, not hang, when the process under test never exits), and starting a service from its entry.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

/** Resolves with `exited`, or rejects when it has not settled after a generous `waitMs`. */
export async function exitWithin<T>(exited: Promise<T>, what: string, waitMs = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not exit within ${waitMs} ms`)), waitMs);
  });
  try {
    return await Promise.race([exited, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** How a child process ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves once `child` has exited, with its code and signal. */
export function exitedOf(child: ChildProcess): Promise<ChildExit> {
  return once(child, "exit").then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
}

/** Everything `child` writes to stdout and stderr, interleaved as it arrives. */
export function outputOf(child: ChildProcess): () => string {
  let output = "";
  const add = (d: Buffer | string) => {
    output += d;
  };
  child.stdout?.on("data", add);
  child.stderr?.on("data", add);
  return () => output;
}

/** A service started from its TypeScript entry: its JSON log lines, its stderr, its exit. */
export interface ServiceProcess {
  child: ChildProcess;
  /** Log lines (JSON; a line that is not JSON is kept as its `msg`) written so far. */
  logs: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<ChildExit>;
}

/** Starts `node --import tsx script ...args` in `cwd` with `env` added to this process's. */
export function startTsService(
  script: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
): ServiceProcess {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = exitedOf(child);
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += String(d);
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ msg: line });
    }
  });
  return { child, logs, stderr: () => stderr, exited };
}
