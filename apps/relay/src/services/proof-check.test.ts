// The relay's verdicts: a result sent again after a 503 (no verdict in time) joins the
// verification of the same proof still under way, or takes its verdict, instead of queueing the
// same work again; a verifier failure is not kept.
import { createProofSystem, type NodeProof, type ProofSystem } from "@prover-boost/proofs";
import { describe, expect, it } from "vitest";
import { type ProofNode, ProofVerifiers } from "./proof-check.ts";

const node: ProofNode = { type: "merge", blockNumber: 3, level: 1, index: 0, childOutputs: [] };
const proof: NodeProof = { proof: "0xabcd", publicInputs: [`0x${"01".repeat(32)}`] };

/** A stand-in real proof system whose verifications end when the test says. */
function controlled() {
  const calls: {
    resolve: (v: boolean) => void;
    reject: (e: Error) => void;
    signal: AbortSignal | undefined;
  }[] = [];
  const system: ProofSystem = {
    ...createProofSystem("sim"),
    name: "honk",
    // As a pool: its signal gives up the wait for a thread (here: always still waiting).
    verify: (_node, _proof, o) =>
      new Promise<boolean>((resolve, reject) => {
        calls.push({ resolve, reject, signal: o?.signal });
        o?.signal?.addEventListener("abort", () => reject(o.signal!.reason), { once: true });
      }),
  };
  return { system, calls };
}

describe("ProofVerifiers.verdict", () => {
  it("shares one verification between a result and its resends, under way and once ended", async () => {
    const verifiers = new ProofVerifiers({ verifyThreads: 1 });
    const { system, calls } = controlled();
    const first = verifiers.verdict(system, node, proof);
    const resend = verifiers.verdict(system, node, { ...proof, proof: "0xABCD" });
    expect(calls).toHaveLength(1);
    calls[0]!.resolve(false);
    expect(await first).toBe(false);
    expect(await resend).toBe(false);
    expect(await verifiers.verdict(system, node, proof)).toBe(false);
    expect(calls).toHaveLength(1);
    // Another proof, or the same proof of another node, is verified on its own.
    void verifiers.verdict(system, node, { ...proof, proof: "0xabce" });
    void verifiers.verdict(system, { ...node, index: 1 }, proof);
    expect(calls).toHaveLength(3);
  });

  it("keeps no verifier failure: the next try verifies afresh", async () => {
    const verifiers = new ProofVerifiers({ verifyThreads: 1 });
    const { system, calls } = controlled();
    const first = verifiers.verdict(system, node, proof);
    calls[0]!.reject(new Error("bb.js did not start"));
    await expect(first).rejects.toThrow("bb.js did not start");
    const again = verifiers.verdict(system, node, proof);
    expect(calls).toHaveLength(2);
    calls[1]!.resolve(true);
    expect(await again).toBe(true);
  });

  it("drops a verification every request awaiting it gave up on, and verifies a resend afresh", async () => {
    const verifiers = new ProofVerifiers({ verifyThreads: 1 });
    const { system, calls } = controlled();
    const a = new AbortController();
    const b = new AbortController();
    const first = verifiers.verdict(system, node, proof, a.signal).catch((e: unknown) => e);
    const joined = verifiers.verdict(system, node, proof, b.signal).catch((e: unknown) => e);
    expect(calls).toHaveLength(1);
    a.abort(new Error("a gave up"));
    // One still waits: the verification stays.
    expect(calls[0]!.signal!.aborted).toBe(false);
    b.abort(new Error("b gave up"));
    expect(calls[0]!.signal!.aborted).toBe(true);
    expect(await first).toMatchObject({ message: "b gave up" });
    expect(await joined).toMatchObject({ message: "b gave up" });
    const resend = verifiers.verdict(system, node, proof, new AbortController().signal);
    expect(calls).toHaveLength(2);
    calls[1]!.resolve(true);
    expect(await resend).toBe(true);
  });

  it("checks simulated proofs in place every time", async () => {
    const verifiers = new ProofVerifiers({ verifyThreads: 1 });
    const sim = createProofSystem("sim");
    const real = await sim.prove(node);
    expect(await verifiers.verdict(sim, node, real)).toBe(true);
    expect(await verifiers.verdict(sim, node, proof)).toBe(false);
  });
});
