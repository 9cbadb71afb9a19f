import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { SseWriter } from "./sse.ts";

/** A socket whose peer never reads: the first chunk is taken, nothing is ever acknowledged. */
function stalledSocket() {
  const taken: string[] = [];
  const out = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _enc, _callback) {
      taken.push(chunk.toString());
    },
  });
  out.on("error", () => {});
  return { out, taken };
}

describe("SseWriter", () => {
  it("drops a client that leaves more than the bound unread, instead of buffering on", () => {
    const { out } = stalledSocket();
    const sse = new SseWriter(out, 1024);
    let sent = 0;
    while (sse.event("job", { block: 1, id: `1:0:${sent}`, status: "queued" }, `1-${sent}`)) {
      sent++;
      expect(sent).toBeLessThan(1000);
    }
    expect(sse.dropped).toBe(true);
    expect(out.destroyed).toBe(true);
    expect(sse.open).toBe(false);
    // It never held much more than the bound (one event over it at most).
    expect(sent).toBeGreaterThan(5);
    expect(sent).toBeLessThan(40);
    expect(sse.comment("keepalive")).toBe(false);
  });

  it("keeps a client that reads, and 0 means no bound", () => {
    const read: string[] = [];
    const reading = new Writable({
      write(chunk: Buffer, _enc, callback) {
        read.push(chunk.toString());
        callback();
      },
    });
    const sse = new SseWriter(reading, 64);
    for (let i = 0; i < 100; i++) expect(sse.event("stage", { i }, `1-${i}`)).toBe(true);
    expect(read.join("")).toContain('id: 1-99\nevent: stage\ndata: {"i":99}\n\n');

    const { out } = stalledSocket();
    const unbounded = new SseWriter(out, 0);
    for (let i = 0; i < 1000; i++) expect(unbounded.event("stage", { i })).toBe(true);
    expect(out.writableLength).toBeGreaterThan(10_000);
  });
});
