import { describe, expect, it } from "vitest";
import { openProvingEndsAt, openProvingExpired } from "./open-proving.ts";

const block = { openedAt: 1_000n, fabricDownMs: 0n, fabricDownSince: null };

describe("openProvingEndsAt", () => {
  it("is the window after the block opened, lengthened by its outages", () => {
    expect(openProvingEndsAt(block, 500)).toBe(1_500n);
    expect(openProvingEndsAt({ ...block, fabricDownMs: 250n }, 500)).toBe(1_750n);
  });

  it("is null for a window of 0: the block stays open", () => {
    expect(openProvingEndsAt(block, 0)).toBeNull();
  });
});

describe("openProvingExpired", () => {
  it("expires a block from the end of its window on, not before", () => {
    expect(openProvingExpired(block, 500, 1_499)).toBe(false);
    expect(openProvingExpired(block, 500, 1_500)).toBe(true);
    expect(openProvingExpired(block, 500, 9_000)).toBe(true);
  });

  it("never expires a block while an outage is open, however late", () => {
    expect(openProvingExpired({ ...block, fabricDownSince: 1_200n }, 500, 9_000)).toBe(false);
  });

  it("never expires a block with a window of 0", () => {
    expect(openProvingExpired(block, 0, Number.MAX_SAFE_INTEGER)).toBe(false);
  });

  it("counts the outages credited: a block down 300 ms ends 300 ms later", () => {
    const down = { ...block, fabricDownMs: 300n };
    expect(openProvingExpired(down, 500, 1_799)).toBe(false);
    expect(openProvingExpired(down, 500, 1_800)).toBe(true);
  });
});
