// One bb.js instance on the committed setup points, never a download: WASM in this thread,
// one thread, the setup prefix loaded from crs/ (see crs/README.md).
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { BackendType, Barretenberg } from "@aztec/bb.js";
import { packageDir } from "@prover-boost/core";

/** The proof settings of verifier target "noir-recursive-no-zk" (Poseidon2 transcript, no ZK). */
export const verifierTarget = "noir-recursive-no-zk";
export const proofSettings = {
  ipaAccumulation: false,
  oracleHashType: "poseidon2",
  disableZk: true,
  optimizedSolidityVerifier: false,
} as const;

const crsDir = new URL("crs/", packageDir("@prover-boost/proofs", import.meta.url));

export interface SetupPoints {
  g1: Uint8Array;
  g2: Uint8Array;
}

let points: SetupPoints | undefined;

/** The committed setup prefix: 257 BN254 G1 points and the G2 point. */
export function setupPoints(): SetupPoints {
  points ??= {
    g1: new Uint8Array(readFileSync(new URL("bn254_g1.dat", crsDir))),
    g2: new Uint8Array(readFileSync(new URL("bn254_g2.dat", crsDir))),
  };
  return points;
}

/** Most gates a circuit may have on this setup: one point fewer than the prefix holds. */
export function maxGates(): number {
  return setupPoints().g1.length / 64 - 1;
}

export async function newBarretenberg(): Promise<Barretenberg> {
  const api = await Barretenberg.new({ backend: BackendType.Wasm, threads: 1, skipSrsInit: true });
  try {
    const { g1, g2 } = setupPoints();
    await api.srsInitSrs({ pointsBuf: g1, numPoints: g1.length / 64, g2Point: g2 });
  } catch (err) {
    await api.destroy();
    throw err;
  }
  return api;
}

/** ACIR as bb.js takes it: noir_wasm's base64 of gzip, unpacked. */
export function acirBytes(bytecode: string): Uint8Array {
  return new Uint8Array(gunzipSync(Buffer.from(bytecode, "base64")));
}
