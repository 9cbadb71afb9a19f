// The bidding agent's state file: one prover's (another key refuses it), and a bid removed from
// it by someone else while the agent ran (`cancel`) is not brought back by the agent's save.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UsageError } from "../cli-options.ts";
import { loadBidState, saveBidState } from "./bid.ts";

const A = "0x00000000000000000000000000000000000000aA";
const B = "0x00000000000000000000000000000000000000bB";
const dirs: string[] = [];
const fileIn = () => {
  const dir = mkdtempSync(path.join(tmpdir(), "pb-bid-state-"));
  dirs.push(dir);
  return path.join(dir, "bids.json");
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const bid = (blockNumber: number) => ({ blockNumber, bidId: `0x${blockNumber}`, createdAt: 1 });

describe("the bid state file", () => {
  it("records whose bids it holds, and refuses another prover's key", () => {
    const file = fileIn();
    const state = loadBidState(file, A);
    state.bids.push(bid(1));
    saveBidState(file, state);
    expect(JSON.parse(readFileSync(file, "utf8")).prover).toBe(A);
    expect(loadBidState(file, A.toLowerCase()).bids).toEqual([bid(1)]);
    expect(() => loadBidState(file, B)).toThrow(UsageError);
    expect(() => loadBidState(file, B)).toThrow(/records the bids of 0x0+aA, not of 0x0+bB/);
  });

  it("takes a file from before it named its prover as the key's", () => {
    const file = fileIn();
    writeFileSync(file, JSON.stringify({ bids: [bid(2)] }));
    expect(loadBidState(file, B)).toEqual({ prover: B, bids: [bid(2)] });
  });

  it("keeps a bid removed on disk since the caller read it removed; keeps the caller's new bids", () => {
    const file = fileIn();
    saveBidState(file, { prover: A, bids: [bid(1), bid(2)] });
    // The agent reads it and starts a round...
    const agent = loadBidState(file, A);
    const loaded = new Set(agent.bids.map((b) => b.bidId));
    // ...meanwhile `cancel` withdraws block 1's bid and saves...
    const other = loadBidState(file, A);
    other.bids = other.bids.filter((b) => b.blockNumber !== 1);
    saveBidState(file, other);
    // ...and the agent, having bid on block 3, saves its copy.
    agent.bids.push(bid(3));
    saveBidState(file, agent, loaded);
    expect(loadBidState(file, A).bids.map((b) => b.blockNumber)).toEqual([2, 3]);
  });
});
