// The relay's listen backlog is LISTEN_BACKLOG, not Node's default of 511. With 1,000 workers
// whose long polls wake at once, the connections a burst opens overflowed a 511-deep accept queue
// (the kernel's ListenOverflows counter rose by thousands during `bench:tree --preset fleet`):
// each dropped connection's SYN is sent again only after a second or more, so a heartbeat or
// result sent in good time reached the relay after its lease had lapsed. The kernel reports a
// listening socket's backlog as its send queue (`ss -ltn`), capped by net.core.somaxconn.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "./harness.ts";

const ASKED = 1234;

function listenBacklog(port: number): number {
  const out = execFileSync("ss", ["-ltnH", `sport = :${port}`], { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.startsWith("LISTEN"));
  if (!line) throw new Error(`no listening socket on port ${port}: ${out}`);
  return Number(line.trim().split(/\s+/)[2]);
}

describe("listen backlog", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { LISTEN_BACKLOG: String(ASKED) }, aggregator: false });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("the relay listens with LISTEN_BACKLOG as its accept queue (as far as the kernel allows)", () => {
    const somaxconn = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8").trim());
    const port = Number(new URL(stack.url).port);
    expect(listenBacklog(port)).toBe(Math.min(ASKED, somaxconn));
  });
});
