// A server this process started (a local anvil, the devnet's private redis-server) must not
// outlive it. An exit handler covers every way out but one: a process killed with SIGKILL (an
// out-of-memory kill, `kill -9`, a test runner giving up on a worker) runs no handler at all, and
// its children keep running, holding their ports, with nobody left to stop them. So each such
// child gets a watcher: a small shell, outside this process's group, that checks every second
// whether this process is still there and kills the child once it is not. The watcher ends by
// itself when the child is gone first, and is ended at once when the child is stopped as usual.
import { type ChildProcess, spawn } from "node:child_process";

/** How often the watcher looks (seconds, as `sleep` takes them). */
const WATCH_EVERY_S = 1;

const WATCH_SCRIPT = `while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep ${WATCH_EVERY_S}; done; kill -0 "$1" 2>/dev/null || kill -KILL "$2" 2>/dev/null`;

/**
 * Kills the process `childPid` (with SIGKILL) within about a second of this process being gone,
 * however it went. Returns the way to end the watch (call it once the child has been stopped).
 * Where no POSIX shell can be started, it does nothing: the exit handlers still apply.
 */
export function killWithThisProcess(childPid: number): () => void {
  let watcher: ChildProcess;
  try {
    watcher = spawn(
      "sh",
      ["-c", WATCH_SCRIPT, "child-guard", String(process.pid), String(childPid)],
      {
        stdio: "ignore",
        // Its own group: a Ctrl-C in the terminal is for this process, which stops the child itself.
        detached: true,
      },
    );
  } catch {
    return () => {};
  }
  watcher.on("error", () => {});
  watcher.unref();
  return () => {
    if (watcher.exitCode === null && watcher.signalCode === null) watcher.kill("SIGKILL");
  };
}
