// A server this process started (a local anvil, the devnet's private redis-server) must not
// outlive it. An exit handler covers every way out but one: a process killed with SIGKILL (an
// out-of-memory kill, `kill -9`, a test runner giving up on a worker) runs no handler at all, and
// its children keep running, holding their ports, with nobody left to stop them. So each such
// child gets a watcher: a small shell, outside this process's group, that reads a pipe from this
// process. Whenever this process is gone, however it went, the kernel closes the pipe, the read
// ends and the watcher kills the child. It is ended as soon as the child exits or is stopped as
// usual, so it never acts on a process id the system may have handed to another process.
import { type ChildProcess, spawn } from "node:child_process";

const WATCH_SCRIPT = 'read -r _; kill -KILL "$1" 2>/dev/null';

/**
 * Kills the process `child` (with SIGKILL) as soon as this process is gone, however it went.
 * Returns the way to end the watch early; it also ends once the child exits. Where no POSIX
 * shell can be started, it does nothing: the exit handlers still apply.
 */
export function killWithThisProcess(child: ChildProcess): () => void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    return () => {};
  }
  let watcher: ChildProcess;
  try {
    watcher = spawn("sh", ["-c", WATCH_SCRIPT, "child-guard", String(child.pid)], {
      stdio: ["pipe", "ignore", "ignore"],
      // Its own group: a Ctrl-C in the terminal is for this process, which stops the child itself.
      detached: true,
    });
  } catch {
    return () => {};
  }
  watcher.on("error", () => {});
  watcher.stdin?.on("error", () => {});
  // Neither the watcher nor its pipe keeps this process running.
  watcher.unref();
  (watcher.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  const end = () => {
    child.off("exit", end);
    if (watcher.exitCode === null && watcher.signalCode === null) watcher.kill("SIGKILL");
  };
  child.once("exit", end);
  return end;
}
