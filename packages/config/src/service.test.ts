// closeOnSignals in a real child process: an uncaught error is logged as one JSON line and the
// process exits with status 1 once closed; a close that never ends is cut off by the deadline.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const service = path.join(path.dirname(fileURLToPath(import.meta.url)), "service.ts");

/** Runs a small ES module with closeOnSignals and a pino logger; returns its stdout lines. */
function run(body: string) {
  const source = `
    import pino from "pino";
    import { closeOnSignals } from ${JSON.stringify(service)};
    const log = pino({ name: "probe" });
    ${body}
  `;
  const out = spawnSync(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", source],
    { encoding: "utf8", timeout: 60_000, killSignal: "SIGKILL" },
  );
  const lines = out.stdout.split("\n").filter((l) => l.trim() !== "");
  return { status: out.status, lines, stderr: out.stderr };
}

describe("closeOnSignals", () => {
  it("logs an uncaught error as one JSON line, closes, and exits with status 1", () => {
    const { status, lines, stderr } = run(`
      closeOnSignals(async () => log.info("closed"), log, { timeoutMs: 30000 });
      setTimeout(() => { throw new Error("boom"); }, 10);
    `);
    expect(status, stderr).toBe(1);
    const entries = lines.map((l) => JSON.parse(l) as { msg: string; err?: { message: string } });
    const crash = entries.find((e) => e.err?.message === "boom");
    expect(crash?.msg).toMatch(/uncaught error/);
    expect(entries.map((e) => e.msg)).toContain("closed");
  });

  it("exits with status 1 when the close outlives the deadline", () => {
    const { status, lines } = run(`
      closeOnSignals(() => new Promise(() => {}), log, { timeoutMs: 200 });
      setInterval(() => {}, 1000);
      setTimeout(() => process.kill(process.pid, "SIGTERM"), 10);
    `);
    expect(status).toBe(1);
    expect(lines.some((l) => /shutdown deadline passed/.test(l))).toBe(true);
  });
});
