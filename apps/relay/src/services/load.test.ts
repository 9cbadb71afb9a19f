import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { AcceptLag, Arrivals, LoopLag, sweepGateOf } from "./load.ts";

const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => {
    done = true;
  });
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};

describe("Arrivals", () => {
  it("drains only once every request stamped before the call is answered", async () => {
    const lag = new LoopLag();
    lag.force(0);
    const arrivals = new Arrivals(lag);
    const a = arrivals.stamp();
    const b = arrivals.stamp();
    const drained = arrivals.drained();
    const later = arrivals.stamp(); // arrived after the call: not waited for
    arrivals.done(b);
    expect(await settled(drained)).toBe(false);
    arrivals.done(a);
    expect(await settled(drained)).toBe(true);
    expect(arrivals.inFlight).toBe(1);
    arrivals.done(later);
    expect(arrivals.inFlight).toBe(0);
  });

  it("stamps the loop's delay, which counts toward how long ago a request arrived", () => {
    const lag = new LoopLag();
    lag.force(750);
    const a = new Arrivals(lag).stamp();
    expect(a.lagMs).toBe(750);
  });
});

describe("accept waits", () => {
  it("count toward the arrival of a connection's first request only", () => {
    const lag = new LoopLag();
    lag.watchAccepts({ recentMs: () => 1800 });
    const arrivals = new Arrivals(lag);
    expect(arrivals.stamp(true).lagMs).toBeGreaterThanOrEqual(1800);
    expect(arrivals.stamp(false).lagMs).toBeLessThan(1800);
    expect(lag.recentMs()).toBeGreaterThanOrEqual(1800);
    expect(lag.behindMs()).toBeLessThan(1800); // shedding follows the loop alone
  });
});

describe("AcceptLag", () => {
  const servers: net.Server[] = [];
  const probes: AcceptLag[] = [];
  afterEach(async () => {
    for (const p of probes.splice(0)) p.stop();
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });
  const listening = async (server: net.Server) => {
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return server;
  };
  const until = async (ok: () => boolean) => {
    while (!ok()) await new Promise((r) => setTimeout(r, 20));
  };

  it("times its own connections' accepts and leaves none waiting", async () => {
    const server = await listening(net.createServer((s) => s.on("error", () => {})));
    let accepted = 0;
    server.on("connection", () => accepted++);
    const probe = new AcceptLag();
    probes.push(probe);
    probe.start(server);
    await until(() => accepted >= 3);
    await until(() => probe.waitingMs() === 0);
    expect(probe.recentMs()).toBeGreaterThanOrEqual(0);
    expect(probe.recentMs()).toBeLessThan(1000);
  });

  it("counts a connection that is never accepted as a wait that keeps growing", async () => {
    // A listener in a stopped process: the kernel completes each connection, nobody accepts it.
    const child = spawn(
      process.execPath,
      [
        "-e",
        'require("net").createServer().listen(0, "127.0.0.1", function () { console.log(this.address().port) })',
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const [line] = (await once(child.stdout!, "data")) as [Buffer];
      child.kill("SIGSTOP");
      const port = Number(String(line).trim());
      const stopped = {
        address: () => ({ address: "127.0.0.1", port, family: "IPv4" }),
        on: () => stopped,
        off: () => stopped,
      } as unknown as net.Server;
      const probe = new AcceptLag();
      probes.push(probe);
      probe.start(stopped);
      await until(() => probe.waitingMs() > 300);
      expect(probe.recentMs()).toBeGreaterThan(300);
      const gate = sweepGateOf(new Arrivals(new LoopLag()), 100, 2000, probe);
      expect(await gate({ lateMs: 0, deferredMs: 0 })).toBe(false);
      expect(await gate({ lateMs: 0, deferredMs: 2500 })).toBe(false);
      expect(await gate({ lateMs: 0, deferredMs: 4500 })).toBe(true);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("sweepGateOf", () => {
  it("puts off a late sweep, but not for longer than its bound", async () => {
    const lag = new LoopLag();
    const gate = sweepGateOf(new Arrivals(lag), 100, 2000);
    expect(await gate({ lateMs: 500, deferredMs: 0 })).toBe(false);
    expect(await gate({ lateMs: 500, deferredMs: 2500 })).toBe(true);
    expect(await gate({ lateMs: 10, deferredMs: 0 })).toBe(true);
  });

  it("waits for requests in flight before sweeping", async () => {
    const lag = new LoopLag();
    const arrivals = new Arrivals(lag);
    const a = arrivals.stamp();
    const go = sweepGateOf(arrivals, 100, 2000)({ lateMs: 0, deferredMs: 0 });
    expect(await settled(go)).toBe(false);
    arrivals.done(a);
    expect(await go).toBe(true);
  });
});
