// Run as its own process by pool.test.ts: proves and verifies through a honk pool, closes it and
// must then exit by itself (no handle left open). Prints one JSON line.
import { createProofPool } from "../pool.ts";

const pool = createProofPool("honk", { maxThreads: 2 });
const node = {
  type: "empty_block_root" as const,
  blockNumber: 5,
  level: 0,
  index: 0,
  childOutputs: [],
};
const proof = await pool.prove(node);
const verified = await pool.verify(node, proof);
await pool.close();
console.log(JSON.stringify({ verified }));
