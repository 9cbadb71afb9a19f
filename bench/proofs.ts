// bench:proofs — honk prove and verify time per job type through the ProofSystem (in-thread,
// and through the worker-thread pool) against bare bb.js on the same circuit in the same run:
// noir_js witness + UltraHonkBackend.generateProof, and UltraHonkVerifierBackend.verifyProof.
// Runs alternate between the two so both see the same machine load; medians are printed with
// the ratio ProofSystem / bare (goal: at most 1.2x).
import { UltraHonkBackend, UltraHonkVerifierBackend } from "@aztec/bb.js";
import { Noir } from "@noir-lang/noir_js";
import { type JobType, jobTypes } from "@prover-boost/core";
import {
  childCount,
  createProofPool,
  createProofSystem,
  fieldHex,
  loadArtifact,
  newBarretenberg,
  nodeInputs,
  type ProofNode,
  type ProofSystem,
  verifierTarget,
} from "@prover-boost/proofs";
import { Command } from "commander";
import { type Hex, hexToBytes } from "viem";

const program = new Command("bench:proofs")
  .option("--runs <n>", "measured runs per job type and path", "20")
  .option("--no-pool", "skip the worker-thread pool column")
  .option("--json", "print one JSON summary instead of a table")
  .parse();
const o = program.opts<{ runs: string; pool: boolean; json?: boolean }>();
const runs = Number(o.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs must be a positive integer");

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, performance.now() - t];
}
/** bb.js's UltraHonkBackend prints a line per proof: keep the bench output readable. */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = () => {};
  try {
    return await fn();
  } finally {
    console.log = log;
  }
}

function nodeOf(type: JobType): ProofNode {
  const children = Array.from({ length: childCount[type] }, (_, i) => fieldHex(BigInt(1000 + i)));
  return {
    type,
    blockNumber: 12,
    level: type === "base" ? 3 : type === "merge" ? 2 : 0,
    index: type === "base" || type === "merge" ? 1 : 0,
    ...(type === "base" ? { txHash: `0x${"c3".repeat(32)}` as Hex } : {}),
    childOutputs: children,
  };
}

const system = createProofSystem("honk");
const pool: ProofSystem | undefined = o.pool
  ? createProofPool("honk", { maxThreads: 1 })
  : undefined;
const api = await newBarretenberg();
const bareVerifier = new UltraHonkVerifierBackend(api);

interface Row {
  type: JobType;
  proveMs: { system: number; bare: number; pool?: number; ratio: number };
  verifyMs: { system: number; bare: number; pool?: number; ratio: number };
}
const rows: Row[] = [];
try {
  for (const type of jobTypes) {
    const artifact = loadArtifact(type);
    const node = nodeOf(type);
    const abi = artifact.abi as { parameters: { name: string }[] };
    const inputs = nodeInputs(node);
    const inputMap = Object.fromEntries(abi.parameters.map((p, i) => [p.name, inputs[i]!]));
    const noir = new Noir({
      bytecode: artifact.bytecode,
      abi: artifact.abi,
    } as ConstructorParameters<typeof Noir>[0]);
    const bare = new UltraHonkBackend(artifact.bytecode, api);
    const vk = hexToBytes(artifact.verificationKey);
    const bareProve = () =>
      quietly(async () => {
        const { witness } = await noir.execute(inputMap);
        return bare.generateProof(witness, { verifierTarget });
      });

    // Warm-up: first calls load the circuit, start the pool thread and its bb.js instance.
    const proof = await system.prove(node);
    const bareProof = await bareProve();
    if (!(await system.verify(node, proof))) throw new Error(`${type}: own proof did not verify`);
    if (pool && !(await pool.verify(node, await pool.prove(node)))) {
      throw new Error(`${type}: pool proof did not verify`);
    }

    const t = { sp: [] as number[], bp: [] as number[], pp: [] as number[] };
    const v = { sv: [] as number[], bv: [] as number[], pv: [] as number[] };
    for (let i = 0; i < runs; i++) {
      // Alternate which goes first, so neither always runs on a warmer cache.
      if (i % 2 === 0) {
        t.sp.push((await timed(() => system.prove(node)))[1]);
        t.bp.push((await timed(bareProve))[1]);
      } else {
        t.bp.push((await timed(bareProve))[1]);
        t.sp.push((await timed(() => system.prove(node)))[1]);
      }
      if (pool) t.pp.push((await timed(() => pool.prove(node)))[1]);
      const ours = () => timed(() => system.verify(node, proof));
      const theirs = () =>
        timed(() =>
          bareVerifier.verifyProof({ ...bareProof, verificationKey: vk }, { verifierTarget }),
        );
      let ok: boolean, sv: number, bok: boolean, bv: number;
      if (i % 2 === 0) {
        [ok, sv] = await ours();
        [bok, bv] = await theirs();
      } else {
        [bok, bv] = await theirs();
        [ok, sv] = await ours();
      }
      if (!ok || !bok) throw new Error(`${type}: a verification failed`);
      v.sv.push(sv);
      v.bv.push(bv);
      if (pool) v.pv.push((await timed(() => pool.verify(node, proof)))[1]);
    }
    const row: Row = {
      type,
      proveMs: { system: median(t.sp), bare: median(t.bp), ratio: median(t.sp) / median(t.bp) },
      verifyMs: { system: median(v.sv), bare: median(v.bv), ratio: median(v.sv) / median(v.bv) },
    };
    if (pool) {
      row.proveMs.pool = median(t.pp);
      row.verifyMs.pool = median(v.pv);
    }
    rows.push(row);
  }
} finally {
  await system.close();
  await pool?.close();
  await api.destroy();
}

const worst = {
  prove: Math.max(...rows.map((r) => r.proveMs.ratio)),
  verify: Math.max(...rows.map((r) => r.verifyMs.ratio)),
};
if (o.json) {
  console.log(JSON.stringify({ proofSystem: "honk", verifierTarget, runs, rows, worst }));
} else {
  const f = (n: number | undefined) => (n === undefined ? "-" : n.toFixed(1));
  console.log(
    `honk (${verifierTarget}), median of ${runs} runs, ms; ratio = ProofSystem / bare bb.js`,
  );
  console.log(
    ["job type".padEnd(22), "prove", "bare", "ratio", "pool", "| verify", "bare", "ratio", "pool"]
      .map((s) => s.padStart(7))
      .join(" "),
  );
  for (const r of rows) {
    console.log(
      [
        r.type.padEnd(22),
        f(r.proveMs.system),
        f(r.proveMs.bare),
        `${r.proveMs.ratio.toFixed(2)}x`,
        f(r.proveMs.pool),
        `| ${f(r.verifyMs.system)}`,
        f(r.verifyMs.bare),
        `${r.verifyMs.ratio.toFixed(2)}x`,
        f(r.verifyMs.pool),
      ]
        .map((s) => s.padStart(7))
        .join(" "),
    );
  }
  const verdict = (x: number) => (x <= 1.2 ? "within 1.2x" : "OVER 1.2x");
  console.log(
    `worst ratio: prove ${worst.prove.toFixed(2)}x (${verdict(worst.prove)}), verify ${worst.verify.toFixed(2)}x (${verdict(worst.verify)})`,
  );
}
