import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Barretenberg } from "@aztec/bb.js";
import { jobTypes } from "@prover-boost/core";
import { bytesToHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acirBytes, maxGates, newBarretenberg, proofSettings } from "./bb.ts";
import { circuitNames, loadArtifact } from "./circuits.ts";
import { compileCircuit } from "./compile.ts";

const sha256 = (path: string) =>
  createHash("sha256")
    .update(readFileSync(new URL(path, import.meta.url)))
    .digest("hex");

describe("committed setup points", () => {
  it("are the documented prefix: 257 G1 points and the G2 point, by sha256", () => {
    expect(sha256("../crs/bn254_g1.dat")).toBe(
      "610693caee9ee6404b914da652413881b54d6ffdb7ccf95743a06f659839de3b",
    );
    expect(sha256("../crs/bn254_g2.dat")).toBe(
      "01797bfc4de5a96f0e516a9ea4537d18786dc30cb991aca4274c95822b69c32f",
    );
    expect(maxGates()).toBe(256);
  });
});

describe("committed circuits", () => {
  let api: Barretenberg;
  beforeAll(async () => {
    api = await newBarretenberg();
  });
  afterAll(() => api.destroy());

  it.each(jobTypes)(
    "%s: recompiling the Noir source yields the committed bytecode",
    async (type) => {
      const artifact = loadArtifact(type);
      const compiled = await compileCircuit(type);
      expect(compiled.name).toBe(circuitNames[type]);
      expect(compiled.noirVersion).toBe(artifact.noirVersion);
      expect(compiled.abi).toEqual(artifact.abi);
      expect(compiled.bytecode).toBe(artifact.bytecode);
    },
  );

  it.each(jobTypes)("%s: fits the setup and has the committed verification key", async (type) => {
    const artifact = loadArtifact(type);
    const bytecode = acirBytes(artifact.bytecode);
    const stats = await api.circuitStats({
      circuit: { name: artifact.name, bytecode, verificationKey: new Uint8Array(0) },
      includeGatesPerOpcode: false,
      settings: proofSettings,
    });
    expect(stats.numGatesDyadic).toBeLessThanOrEqual(maxGates());
    const vk = await api.circuitComputeVk({
      circuit: { name: artifact.name, bytecode },
      settings: proofSettings,
    });
    expect(bytesToHex(vk.bytes)).toBe(artifact.verificationKey);
  });

  it("pins the compiler the artifacts were built with", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      devDependencies: Record<string, string>;
      dependencies: Record<string, string>;
    };
    const noir = pkg.devDependencies["@noir-lang/noir_wasm"]!;
    expect(loadArtifact("merge").noirVersion.startsWith(`${noir}+`)).toBe(true);
    expect(pkg.dependencies["@noir-lang/noir_js"]).toBe(noir);
    expect(pkg.dependencies["@aztec/bb.js"]).toBe("5.0.0");
  });
});
