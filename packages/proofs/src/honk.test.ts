import { planTree } from "@prover-boost/core";
import type { Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIELD_MODULUS, fieldHex } from "./fields.ts";
import { honkProofSystem, ProofSystemUnavailable } from "./honk.ts";
import { createProofSystem } from "./system.ts";
import type { NodeProof, ProofNode } from "./types.ts";

const honk = createProofSystem("honk");
afterAll(() => honk.close());

const txs: Hex[] = [`0x${"11".repeat(32)}`, `0x${"ff".repeat(32)}`, `0x${"00".repeat(31)}07`];
const blockNumber = 42;

/** Proves a whole block of `txs` bottom-up, each parent over its children's outputs. */
async function proveBlock(hashes: readonly Hex[], block: number) {
  const plan = planTree(hashes.length);
  const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
  const proved = new Map<string, { node: ProofNode; proof: NodeProof }>();
  const prove = async (key: string): Promise<{ node: ProofNode; proof: NodeProof }> => {
    const planned = byKey.get(key)!;
    const children = [];
    for (const child of planned.children) children.push(await prove(child));
    const node: ProofNode = {
      type: planned.type,
      blockNumber: block,
      level: planned.level,
      index: planned.index,
      ...(planned.txIndex === undefined ? {} : { txHash: hashes[planned.txIndex]! }),
      childOutputs: children.map((c) => honk.outputOf(c.node, c.proof)),
    };
    const result = { node, proof: await honk.prove(node) };
    proved.set(key, result);
    return result;
  };
  await prove(plan.root);
  return { plan, proved };
}

function flipByte(proof: Hex, at: number): Hex {
  const i = 2 + at * 2;
  const byte = Number.parseInt(proof.slice(i, i + 2), 16) ^ 0x01;
  return `${proof.slice(0, i)}${byte.toString(16).padStart(2, "0")}${proof.slice(i + 2)}` as Hex;
}

describe("honk proof system", () => {
  let block: Awaited<ReturnType<typeof proveBlock>>;
  beforeAll(async () => {
    block = await proveBlock(txs, blockNumber);
  });

  it("proves every node of a block, and each proof verifies on its own", async () => {
    expect(block.proved.size).toBe(block.plan.nodes.length);
    for (const { node, proof } of block.proved.values()) {
      expect(await honk.verify(node, proof)).toBe(true);
      const out = honk.outputOf(node, proof);
      expect(BigInt(out) < FIELD_MODULUS).toBe(true);
      expect(proof.publicInputs.at(-1)).toBe(out);
    }
  });

  it("lays out public inputs as block, level, index, then the tx halves or child outputs", () => {
    const base = [...block.proved.values()].find((p) => p.node.txHash === txs[1])!;
    expect(base.proof.publicInputs.slice(0, 5)).toEqual([
      fieldHex(42n),
      fieldHex(BigInt(base.node.level)),
      fieldHex(BigInt(base.node.index)),
      fieldHex((1n << 128n) - 1n),
      fieldHex((1n << 128n) - 1n),
    ]);
    const root = block.proved.get(block.plan.root)!;
    expect(root.node.type).toBe("block_root");
    expect(root.proof.publicInputs.slice(3, 5)).toEqual(root.node.childOutputs);
  });

  it("gives every node a different output", () => {
    const outs = [...block.proved.values()].map((p) => honk.outputOf(p.node, p.proof));
    expect(new Set(outs).size).toBe(outs.length);
  });

  it("rejects a proof with one byte changed", async () => {
    const { node, proof } = block.proved.get(block.plan.root)!;
    for (const at of [0, 1000, (proof.proof.length - 2) / 2 - 1]) {
      expect(await honk.verify(node, { ...proof, proof: flipByte(proof.proof, at) })).toBe(false);
    }
    expect(await honk.verify(node, { ...proof, proof: proof.proof.slice(0, -64) as Hex })).toBe(
      false,
    );
    expect(await honk.verify(node, { ...proof, proof: "0x" })).toBe(false);
  });

  it("rejects a proof made for another node", async () => {
    const base = [...block.proved.values()].find((p) => p.node.type === "base")!;
    const others: ProofNode[] = [
      { ...base.node, index: base.node.index + 1 },
      { ...base.node, level: base.node.level + 1 },
      { ...base.node, blockNumber: blockNumber + 1 },
      { ...base.node, txHash: txs[2] },
    ];
    for (const other of others) {
      expect(await honk.verify(other, base.proof)).toBe(false);
    }
  });

  it("rejects a proof whose public inputs were rewritten to claim another node", async () => {
    const base = [...block.proved.values()].find((p) => p.node.type === "base")!;
    const other: ProofNode = { ...base.node, index: base.node.index + 1 };
    const claimed = [...base.proof.publicInputs];
    claimed[2] = fieldHex(BigInt(other.index));
    expect(await honk.verify(other, { ...base.proof, publicInputs: claimed })).toBe(false);
  });

  it("rejects a parent whose child outputs differ from its inputs", async () => {
    const root = block.proved.get(block.plan.root)!;
    const [left, right] = root.node.childOutputs as [Hex, Hex];
    const bump = fieldHex((BigInt(left) + 1n) % FIELD_MODULUS);
    const variants: Hex[][] = [[right, left], [bump, right], [left, left], [left]];
    for (const childOutputs of variants) {
      expect(await honk.verify({ ...root.node, childOutputs }, root.proof)).toBe(false);
    }
    // Rewriting the public inputs to match does not help: the proof is over the originals.
    const inputs = [...root.proof.publicInputs];
    inputs[3] = bump;
    expect(
      await honk.verify(
        { ...root.node, childOutputs: [bump, right] },
        { ...root.proof, publicInputs: inputs },
      ),
    ).toBe(false);
  });

  it("rejects a claimed output other than the proved one", async () => {
    const { node, proof } = block.proved.get(block.plan.root)!;
    const inputs = [...proof.publicInputs];
    inputs[inputs.length - 1] = fieldHex((BigInt(inputs.at(-1)!) + 1n) % FIELD_MODULUS);
    expect(await honk.verify(node, { ...proof, publicInputs: inputs })).toBe(false);
    expect(
      await honk.verify(node, { ...proof, publicInputs: proof.publicInputs.slice(0, -1) }),
    ).toBe(false);
  });

  it("proves the roots of one-transaction and empty blocks", async () => {
    const single = await proveBlock([txs[0]!], 7);
    const empty = await proveBlock([], 8);
    for (const { proved, plan } of [single, empty]) {
      const root = proved.get(plan.root)!;
      expect(await honk.verify(root.node, root.proof)).toBe(true);
      expect(await honk.verify({ ...root.node, blockNumber: 9 }, root.proof)).toBe(false);
    }
    expect(single.proved.get(single.plan.root)!.node.type).toBe("single_tx_block_root");
    expect(empty.proved.get(empty.plan.root)!.node.type).toBe("empty_block_root");
  });

  it("refuses nodes that do not fit their circuit", async () => {
    const tooBig = fieldHex(FIELD_MODULUS - 1n).replace(/^0x30/, "0xff") as Hex;
    const bad: ProofNode[] = [
      { type: "base", blockNumber: 1, level: 0, index: 0, childOutputs: [] },
      { type: "merge", blockNumber: 1, level: 1, index: 0, childOutputs: [fieldHex(1n)] },
      { type: "merge", blockNumber: 1, level: 1, index: 0, childOutputs: [fieldHex(1n), tooBig] },
      {
        type: "empty_block_root",
        blockNumber: 1,
        level: 0,
        index: 0,
        txHash: txs[0],
        childOutputs: [],
      },
      { type: "empty_block_root", blockNumber: -1, level: 0, index: 0, childOutputs: [] },
    ];
    const { node, proof } = block.proved.get(block.plan.root)!;
    for (const b of bad) {
      await expect(honk.prove(b)).rejects.toThrow();
      expect(await honk.verify({ ...b, type: node.type }, proof)).toBe(false);
    }
  });

  it("names its circuits and serves their verification keys", async () => {
    expect(honk.circuitOf("merge")).toBe("prover_boost_merge");
    const vk = await honk.verificationKey("base");
    expect(vk).toMatch(/^0x[0-9a-f]+$/);
    expect(vk).not.toBe(await honk.verificationKey("merge"));
  });

  it("throws, never answers false, when bb.js cannot start, and starts it again on the next call", async () => {
    const { node, proof } = [...block.proved.values()][0]!;
    let opens = 0;
    const broken = honkProofSystem(async () => {
      opens++;
      throw new Error("no WASM today");
    });
    // Not a verdict on the proof: the relay must not charge an invalid proof for it.
    await expect(broken.verify(node, proof)).rejects.toBeInstanceOf(ProofSystemUnavailable);
    await expect(broken.verify(node, proof)).rejects.toThrow(/bb.js did not start: .*no WASM/);
    expect(opens).toBe(2);
    await broken.close();
  });

  it("lets the calls already queued finish when it is closed, and refuses later ones", async () => {
    const { node, proof } = [...block.proved.values()][0]!;
    const sys = honkProofSystem();
    const queued = [sys.verify(node, proof), sys.verify(node, proof)];
    await sys.close();
    expect(await Promise.all(queued)).toEqual([true, true]);
    await expect(sys.verify(node, proof)).rejects.toBeInstanceOf(ProofSystemUnavailable);
  });
});

describe("a honk proof checked with bare bb.js", () => {
  it("verifies from what the relay publishes alone: proof, public inputs, verification key", async () => {
    const { UltraHonkVerifierBackend } = await import("@aztec/bb.js");
    const { newBarretenberg, verifierTarget } = await import("./bb.ts");
    const node: ProofNode = {
      type: "merge",
      blockNumber: 77,
      level: 1,
      index: 1,
      childOutputs: [fieldHex(11n), fieldHex(12n)],
    };
    const proved = await honk.prove(node);
    const published = { ...proved, verificationKey: await honk.verificationKey("merge") };
    const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex.slice(2), "hex"));
    const api = await newBarretenberg();
    try {
      const verifier = new UltraHonkVerifierBackend(api);
      const check = (publicInputs: string[]) =>
        verifier.verifyProof(
          {
            proof: bytes(published.proof),
            publicInputs,
            verificationKey: bytes(published.verificationKey),
          },
          { verifierTarget },
        );
      expect(await check(published.publicInputs)).toBe(true);
      const other = [...published.publicInputs];
      other[2] = fieldHex(0n);
      expect(await check(other)).toBe(false);
    } finally {
      await api.destroy();
    }
  });
});
