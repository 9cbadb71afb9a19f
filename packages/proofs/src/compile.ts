// Compiling the circuits with the Noir compiler from the registry (noir_wasm), for
// `npm run proofs:compile` and for the test that the committed bytecode is what it yields.
import { fileURLToPath } from "node:url";
import { compile_program, createFileManager } from "@noir-lang/noir_wasm";
import type { JobType } from "@prover-boost/core";
import { circuitNames, circuitsDir } from "./circuits.ts";

export interface CompiledCircuit {
  name: string;
  noirVersion: string;
  abi: unknown;
  bytecode: string;
}

/** Compiles circuits/<name> and keeps only what proving needs (no debug symbols, no paths). */
export async function compileCircuit(type: JobType): Promise<CompiledCircuit> {
  const name = circuitNames[type];
  const dir = fileURLToPath(new URL(`${name}/`, circuitsDir)).replace(/\/$/, "");
  const quiet = () => {};
  // noir_wasm prints "Compiling at <path>" on console.log whatever log function it is given.
  const log = console.log;
  console.log = quiet;
  try {
    const { program } = await compile_program(createFileManager(dir), dir, quiet, quiet);
    return {
      name,
      noirVersion: program.noir_version,
      abi: program.abi,
      bytecode: program.bytecode,
    };
  } finally {
    console.log = log;
  }
}
