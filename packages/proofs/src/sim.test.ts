import { simProof } from "@prover-boost/core";
import type { Hex } from "viem";
import { afterAll, describe, expect, it } from "vitest";
import { createProofPool } from "./pool.ts";
import { createProofSystem } from "./system.ts";
import { isProofSystemName, type ProofNode } from "./types.ts";

const tx = `0x${"ab".repeat(32)}` as Hex;
const base: ProofNode = {
  type: "base",
  blockNumber: 7,
  level: 2,
  index: 1,
  txHash: tx,
  childOutputs: [],
};

describe("sim proof system", () => {
  const sim = createProofSystem("sim");

  it("proves exactly core's simProof, with no public inputs, and outputs the proof", async () => {
    const p = await sim.prove(base);
    expect(p.proof).toBe(
      simProof({ type: "base", blockNumber: 7, level: 2, index: 1, inputs: [tx], children: [] }),
    );
    expect(p.publicInputs).toEqual([]);
    expect(sim.outputOf(base, p)).toBe(p.proof);
    expect(await sim.verify(base, p)).toBe(true);
  });

  it("binds a parent to its children's outputs", async () => {
    const left = await sim.prove(base);
    const right = await sim.prove({ ...base, index: 0 });
    const merge: ProofNode = {
      type: "merge",
      blockNumber: 7,
      level: 1,
      index: 0,
      childOutputs: [sim.outputOf(base, left), sim.outputOf(base, right)],
    };
    const p = await sim.prove(merge);
    expect(p.proof).toBe(
      simProof({
        type: "merge",
        blockNumber: 7,
        level: 1,
        index: 0,
        inputs: [],
        children: [left.proof, right.proof],
      }),
    );
    expect(await sim.verify(merge, p)).toBe(true);
    expect(await sim.verify({ ...merge, childOutputs: [right.proof, left.proof] }, p)).toBe(false);
  });

  it("rejects a tampered proof, another node's proof and stray public inputs", async () => {
    const p = await sim.prove(base);
    const flipped = `${p.proof.slice(0, -1)}${p.proof.endsWith("0") ? "1" : "0"}` as Hex;
    expect(await sim.verify(base, { ...p, proof: flipped })).toBe(false);
    expect(await sim.verify({ ...base, index: 2 }, p)).toBe(false);
    expect(await sim.verify({ ...base, level: 3 }, p)).toBe(false);
    expect(await sim.verify({ ...base, blockNumber: 8 }, p)).toBe(false);
    expect(await sim.verify({ ...base, txHash: `0x${"cd".repeat(32)}` }, p)).toBe(false);
    expect(await sim.verify(base, { ...p, publicInputs: [tx] })).toBe(false);
    expect(await sim.verify(base, { ...p, proof: "0x1234" })).toBe(false);
    expect(await sim.verify(base, { ...p, proof: "0xzz" as Hex })).toBe(false);
    expect(await sim.verify({ ...base, txHash: "0x12" }, p)).toBe(false);
  });

  it("accepts an upper-case hex proof, as the relay always has", async () => {
    const p = await sim.prove(base);
    const upper = `0x${p.proof.slice(2).toUpperCase()}` as Hex;
    expect(await sim.verify(base, { ...p, proof: upper })).toBe(true);
  });

  it("names its circuits and has no verification key", async () => {
    expect(sim.circuitOf("merge")).toBe("sim/merge");
    expect(await sim.verificationKey("base")).toBe("0x");
  });

  it("knows the proof system names", () => {
    expect(isProofSystemName("sim")).toBe(true);
    expect(isProofSystemName("honk")).toBe(true);
    expect(isProofSystemName("groth16")).toBe(false);
  });
});

describe("sim proof pool", () => {
  const pool = createProofPool("sim", { maxThreads: 2 });
  afterAll(() => pool.close());

  it("proves and verifies on worker threads, same bytes as in-thread", async () => {
    const p = await pool.prove(base);
    expect(p).toEqual(await createProofSystem("sim").prove(base));
    expect(await pool.verify(base, p)).toBe(true);
    expect(await pool.verify({ ...base, index: 0 }, p)).toBe(false);
    expect(pool.circuitOf("base")).toBe("sim/base");
  });
});
