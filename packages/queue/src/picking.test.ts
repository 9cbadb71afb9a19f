// The pop log's rules, with stand-in fetchers whose pops answer when the test says: which job a
// pop would bring after the pops other lessees of this process sent since a look, and when a
// queue may be left unpopped because those pops took every job the look saw.
import type { Job, Worker } from "bullmq";
import { describe, expect, it } from "vitest";
import type { ProofJobData } from "./catalog.ts";
import { allSeenTaken, nextPriority, popNoted, type QueueAhead } from "./picking.ts";

type Popped = Job<ProofJobData> | undefined;

/** A fetcher whose pops each wait for `answer` (in the order they were sent). */
function stallingFetcher() {
  const pending: ((job: Popped) => void)[] = [];
  const fetcher = {
    getNextJob: () => new Promise<Popped>((resolve) => pending.push(resolve)),
  } as unknown as Worker<ProofJobData>;
  return {
    fetcher,
    answer: (job: Popped) => pending.shift()!(job),
  };
}

const job = (id: string, putBack: string[] = []) =>
  ({
    id,
    moveToWait: async () => {
      putBack.push(id);
    },
  }) as unknown as Job<ProofJobData>;

/** A look that saw `ids` (priorities `next`) and `ready` jobs, before any pop of `queue`. */
const lookAt = (ids: string[], next: number[], ready = ids.length): QueueAhead => ({
  ready,
  ids,
  next,
  mark: { sent: 0, watchFrom: 0 },
});

const settle = () => new Promise((r) => setImmediate(r));

describe("a pop sent since a look", () => {
  it("while unanswered, is taken to take the look's next job", () => {
    const queue = {};
    const seen = lookAt(["m1", "m2"], [3, 4]);
    expect(nextPriority(queue, seen)).toBe(3);
    const { fetcher } = stallingFetcher();
    void popNoted(queue, fetcher, "t1", new Set());
    expect(nextPriority(queue, seen)).toBe(4);
    void popNoted(queue, fetcher, "t2", new Set());
    expect(nextPriority(queue, seen)).toBe(Number.POSITIVE_INFINITY);
  });

  it("once answered, takes only the job it brought: one the look never saw leaves the look's head", async () => {
    // The pop reached Redis before the look (it went out later, or on another connection):
    // it brought a job the look could not see, and the look's head is still there.
    const queue = {};
    const seen = lookAt(["m2"], [4]);
    const { fetcher, answer } = stallingFetcher();
    const popped = popNoted(queue, fetcher, "t1", new Set());
    expect(nextPriority(queue, seen)).toBe(Number.POSITIVE_INFINITY);
    answer(job("m1"));
    await popped;
    await settle();
    expect(nextPriority(queue, seen)).toBe(4);
  });

  it("a pop that came back empty takes nothing", async () => {
    const queue = {};
    const seen = lookAt(["m1"], [3]);
    const { fetcher, answer } = stallingFetcher();
    const popped = popNoted(queue, fetcher, "t1", new Set());
    answer(undefined);
    await popped;
    await settle();
    expect(nextPriority(queue, seen)).toBe(3);
  });
});

describe("a queue is left unpopped", () => {
  it("when the pops since the look kept every job it saw", async () => {
    const queue = {};
    const seen = lookAt(["m1"], [3]);
    const { fetcher, answer } = stallingFetcher();
    void popNoted(queue, fetcher, "t1", new Set());
    const skip = allSeenTaken(queue, seen);
    answer(job("m1"));
    expect(await skip).toBe(true);
  });

  it("not when one of them brought another job, or none", async () => {
    for (const brought of [job("x"), undefined]) {
      const queue = {};
      const seen = lookAt(["m1"], [3]);
      const { fetcher, answer } = stallingFetcher();
      void popNoted(queue, fetcher, "t1", new Set());
      const skip = allSeenTaken(queue, seen);
      answer(brought);
      expect(await skip).toBe(false);
    }
  });

  it("not when one of them put the job it brought back, unannounced", async () => {
    const queue = {};
    const seen = lookAt(["m1"], [3]);
    const { fetcher, answer } = stallingFetcher();
    const putBack: string[] = [];
    const popped = popNoted(queue, fetcher, "t1", new Set(), undefined, () => false);
    const skip = allSeenTaken(queue, seen);
    answer(job("m1", putBack));
    expect(await popped).toBeUndefined();
    expect(putBack).toEqual(["m1"]);
    expect(await skip).toBe(false);
  });

  it("not when a pop unanswered at the look put a barred job back: the look could not see it", async () => {
    const queue = {};
    const barredOne = stallingFetcher();
    const other = stallingFetcher();
    const putBack: string[] = [];
    // A lessee barred from m0 pops it on the way to the next job, and puts it back when done.
    const first = popNoted(queue, barredOne.fetcher, "t0", new Set(["m0"]));
    // The look went out while that pop was unanswered, m0 out of the queue: it saw only m1.
    const seen: QueueAhead = { ready: 1, ids: ["m1"], next: [3], mark: { sent: 1, watchFrom: 0 } };
    void popNoted(queue, other.fetcher, "t1", new Set());
    const skip = allSeenTaken(queue, seen);
    barredOne.answer(job("m0", putBack));
    await settle();
    barredOne.answer(undefined);
    expect(await first).toBeUndefined();
    other.answer(job("m1"));
    expect(putBack).toEqual(["m0"]);
    expect(await skip).toBe(false);
  });

  it("not when the look saw fewer jobs than were ready", async () => {
    const queue = {};
    const seen = lookAt(["m1"], [3], 2);
    const { fetcher, answer } = stallingFetcher();
    void popNoted(queue, fetcher, "t1", new Set());
    void popNoted(queue, fetcher, "t2", new Set());
    const skip = allSeenTaken(queue, seen);
    answer(job("m1"));
    answer(job("m2"));
    expect(await skip).toBe(false);
  });
});

describe("pops are counted", () => {
  it("by whether they brought a job for the lessee", async () => {
    const queue = {};
    const count = { job: 0, empty: 0 };
    const { fetcher, answer } = stallingFetcher();
    const pops = [
      popNoted(queue, fetcher, "t1", new Set(), count),
      popNoted(queue, fetcher, "t2", new Set(), count),
      popNoted(queue, fetcher, "t3", new Set(), count, () => false),
    ];
    answer(job("a"));
    answer(undefined);
    answer(job("b"));
    await Promise.all(pops);
    await settle();
    expect(count).toEqual({ job: 1, empty: 2 });
  });
});
