import { describe, expect, it } from "vitest";
import { Arrivals, LoopLag, sweepGateOf } from "./load.ts";

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
