// Attack: get credit for a proof that does not prove the node leased. Each block is verified by
// its own proof system (sim, and honk's real UltraHonk proofs), and each of these gets
// 422 INVALID_PROOF, the invalid-proof penalty, and no credit: no proven job, no stored proof,
// nothing the parent is built on.
//   - a tampered proof (one byte changed), and for honk a proof whose public inputs were edited;
//   - a valid proof of another node of the same block (the other base job);
//   - a parent proved over inputs other than its children's accepted outputs.
// The honest proofs after them are accepted and the block is paid.
import { accounts } from "@prover-boost/db";
import {
  createProofPool,
  type NodeProof,
  type ProofNode,
  type ProofSystem,
  type ProofSystemName,
} from "@prover-boost/proofs";
import type { LeasedJob, RelayClient } from "@prover-boost/sdk";
import { proofNodeOfJob } from "@prover-boost/worker";
import type { Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { relayError, tryLease } from "./support/blocks.ts";
import {
  balance,
  expectLedgerConsistent,
  openUnclaimed,
  signIn,
  waitForStage,
} from "./support/market-flow.ts";
import { verifyIndependently } from "./support/verify-honk.ts";

const PENALTY = 1000n;
const DEPOSIT = 100_000n;

/** The proof with one byte of its middle flipped. */
function tampered(p: NodeProof): NodeProof {
  const i = 2 + 2 * Math.floor((p.proof.length - 2) / 4);
  const byte = (Number.parseInt(p.proof.slice(i, i + 2), 16) ^ 0x01).toString(16).padStart(2, "0");
  return { ...p, proof: `${p.proof.slice(0, i)}${byte}${p.proof.slice(i + 2)}` as Hex };
}

async function leaseOne(w: RelayClient): Promise<LeasedJob> {
  const out = await eventually(async () => {
    const r = await tryLease(w, 1000);
    return r.status === 200 && "job" in r ? r.job : null;
  }, 30_000);
  return out;
}

for (const name of ["sim", "honk"] as const satisfies readonly ProofSystemName[]) {
  describe(`${name}: a proof that does not prove the leased node is refused and penalized`, () => {
    const BLOCK = name === "sim" ? 71 : 72;
    const operator = account(name === "sim" ? 0xa1 : 0xa2);
    let stack: Stack;
    let system: ProofSystem;
    let txs: Hex[];
    let workers = 0;
    const worker = () => signIn(stack, operator, `w${workers++}`);

    beforeAll(async () => {
      // On threads: the Prisma client this process loads sets a global bb.js reads for its
      // files, so honk runs where the relay runs it, in a pool.
      system = createProofPool(name, { maxThreads: 1 });
      stack = await startStack({
        env: {
          PROOF_SYSTEM: name,
          INVALID_PROOF_PENALTY_WEI: PENALTY.toString(),
          MAX_JOB_FAILS_PER_OPERATOR: "20",
          MAX_JOB_ATTEMPTS: "20",
          // Proving with honk in the test takes seconds on a busy machine.
          LEASE_MS: "60000",
        },
      });
      await stack.admin.deposit(operator.address, DEPOSIT);
      // Two transactions: two base jobs under one block root.
      const open = await openUnclaimed(stack, BLOCK, { txCount: 2 });
      txs = open.txs as Hex[];
      await waitForStage(stack, BLOCK, "open_proving");
    });
    afterAll(async () => {
      await stack?.close();
      await system?.close();
    });

    async function refused(w: RelayClient, job: LeasedJob, p: NodeProof) {
      const err = await relayError(w.submitResult(job.id, p.proof, p.publicInputs));
      expect(err).toEqual({ status: 422, code: "INVALID_PROOF" });
      const row = await stack.db.prisma.proofJob.findUniqueOrThrow({ where: { id: job.id } });
      expect(row.status).not.toBe("proven");
      expect(row.proof).toBeNull();
      expect(await stack.db.prisma.proofArtifact.count({ where: { jobId: job.id } })).toBe(0);
    }

    it("tampered, another node's, and a parent over other outputs: 422 each, then honest proofs pass", async () => {
      let invalid = 0;
      // A base job, first with a tampered proof of itself.
      let w = await worker();
      let job = await leaseOne(w);
      expect(job.type).toBe("base");
      expect(job.proofSystem).toBe(name);
      const node = proofNodeOfJob(job);
      const honest = await system.prove(node);
      await refused(w, job, tampered(honest));
      invalid++;
      if (name === "honk") {
        // The proof's bytes intact, one public input changed (the transaction it commits to).
        const inputs = [...honest.publicInputs];
        const last = inputs.length - 1;
        inputs[last] = `0x${(BigInt(inputs[last]!) ^ 1n).toString(16).padStart(64, "0")}` as Hex;
        w = await worker();
        job = await leaseOne(w);
        await refused(w, job, { proof: honest.proof, publicInputs: inputs });
        invalid++;
      }

      // A valid proof of the other base node (other index, other transaction) for this job.
      w = await worker();
      job = await leaseOne(w);
      expect(job.type).toBe("base");
      const other: ProofNode = {
        ...proofNodeOfJob(job),
        index: 1 - job.index,
        txHash: txs.find((t) => t !== job.inputs[0])!,
      };
      const otherProof = await system.prove(other);
      expect(await system.verify(other, otherProof)).toBe(true);
      await refused(w, job, otherProof);
      invalid++;

      // Both bases proved honestly; their outputs are what the root must be proved over.
      const outputs = new Map<string, Hex>();
      while (outputs.size < 2) {
        w = await worker();
        job = await leaseOne(w);
        expect(job.type).toBe("base");
        const n = proofNodeOfJob(job);
        const p = await system.prove(n);
        expect(await w.submitResult(job.id, p.proof, p.publicInputs)).toEqual({
          status: "accepted",
        });
        outputs.set(job.id, system.outputOf(n, p));
      }

      // The root, proved over outputs that are not its children's: refused.
      w = await worker();
      const root = await leaseOne(w);
      expect(root.type).toBe("block_root");
      expect(root.children.map((c) => c.output)).toEqual(
        root.children.map((c) => outputs.get(c.id)),
      );
      const rootNode = proofNodeOfJob(root);
      const swapped: ProofNode = {
        ...rootNode,
        childOutputs: [...rootNode.childOutputs].reverse(),
      };
      await refused(w, root, await system.prove(swapped));
      invalid++;
      const forged: ProofNode = {
        ...rootNode,
        childOutputs: [rootNode.childOutputs[0]!, rootNode.childOutputs[0]!],
      };
      w = await worker();
      expect((await leaseOne(w)).id).toBe(root.id);
      await refused(w, root, await system.prove(forged));
      invalid++;

      // The honest root is accepted and the block is proven.
      w = await worker();
      expect((await leaseOne(w)).id).toBe(root.id);
      const good = await system.prove(rootNode);
      expect(await w.submitResult(root.id, good.proof, good.publicInputs)).toEqual({
        status: "accepted",
      });
      // Sent again (its first answer lost, say), the same proof is answered as the first time,
      // with nothing credited again; a changed one (a byte, or for honk a public input) is not
      // this worker's accepted proof: a lost lease, neither verified nor penalized.
      expect(await w.submitResult(root.id, good.proof, good.publicInputs)).toEqual({
        status: "accepted",
      });
      const bentInputs =
        name === "honk"
          ? good.publicInputs.map((f, i) =>
              i === 0 ? (`0x${(BigInt(f) ^ 1n).toString(16).padStart(64, "0")}` as Hex) : f,
            )
          : good.publicInputs;
      for (const again of [tampered(good), { proof: good.proof, publicInputs: bentInputs }]) {
        if (again.publicInputs === good.publicInputs && again.proof === good.proof) continue;
        expect(await relayError(w.submitResult(root.id, again.proof, again.publicInputs))).toEqual({
          status: 409,
          code: "LEASE_LOST",
        });
      }
      await waitForStage(stack, BLOCK, "paid");

      // One penalty per invalid proof, each burning PENALTY of the operator's collateral.
      const penalties = await stack.db.prisma.penalty.findMany({
        where: { kind: "invalid_proof", blockNumber: BLOCK },
      });
      expect(penalties.length).toBe(invalid);
      expect(penalties.every((p) => p.amount.toFixed() === PENALTY.toString())).toBe(true);
      expect(await balance(stack.db.prisma, accounts.burn)).toBe(BigInt(invalid) * PENALTY);
      // Credit went only to the accepted proofs: 3 jobs, stored (honk) once each.
      const proven = await stack.db.prisma.proofJob.count({
        where: { blockNumber: BLOCK, status: "proven" },
      });
      expect(proven).toBe(3);
      expect(await stack.db.prisma.proofArtifact.count({ where: { blockNumber: BLOCK } })).toBe(
        name === "sim" ? 0 : 3,
      );
      const served = await stack.client.getProof(BLOCK, root.id);
      expect(served).toMatchObject({ proofSystem: name, proof: good.proof });
      expect(served.publicInputs).toEqual(good.publicInputs);
      await expectLedgerConsistent(stack.db.prisma);

      if (name === "honk") {
        // Every served proof verifies on its own with bare bb.js and the served verification
        // key; the same proof with one public input changed does not.
        const ids = [...outputs.keys(), root.id];
        const all = await Promise.all(ids.map((id) => stack.client.getProof(BLOCK, id)));
        expect(all.map((p) => p.circuit)).toEqual([
          "prover_boost_base",
          "prover_boost_base",
          "prover_boost_block_root",
        ]);
        const bent = {
          ...all[2]!,
          publicInputs: all[2]!.publicInputs.map((f, i) =>
            i === 0 ? (`0x${(BigInt(f) + 1n).toString(16).padStart(64, "0")}` as Hex) : f,
          ),
        };
        expect(verifyIndependently([...all, bent])).toEqual([true, true, true, false]);
      }
    });
  });
}
