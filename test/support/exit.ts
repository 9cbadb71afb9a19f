// Waiting for a child process to exit, with a deadline: a test about shutdown must fail, not hang,
// when the process under test never exits.
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";

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
