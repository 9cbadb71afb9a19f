// Strict signature handling: 65 bytes r || s || v, v in {27, 28}, 0 < r, s < n and s <= n/2
// (no malleable twins). Recovery uses the native secp256k1 binding when it loads (about 30x
// faster than pure JS) and falls back to viem's pure-JS recovery; both are held to the same
// parsing rules, so they accept and refuse exactly the same signatures.
import { createRequire } from "node:module";
import { type Address, getAddress, type Hex, recoverAddress } from "viem";
import { DomainError, InvariantError } from "./errors.ts";
import { keccak256Bytes } from "./keccak.ts";

const CURVE_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = CURVE_N >> 1n;
const signatureHex = /^0x[0-9a-fA-F]{130}$/;
const digestHex = /^0x[0-9a-fA-F]{64}$/;

export interface ParsedSignature {
  r: bigint;
  s: bigint;
  /** 0 or 1 */
  recovery: 0 | 1;
  /** r || s as 64 bytes */
  compact: Uint8Array;
}

/** Parses and validates a 65-byte signature; throws BAD_SIGNATURE on any deviation. */
export function parseSignature(signature: string): ParsedSignature {
  if (!signatureHex.test(signature)) {
    throw new DomainError("BAD_SIGNATURE", "signature must be 65 bytes of hex (r || s || v)");
  }
  const r = BigInt(`0x${signature.slice(2, 66)}`);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (v !== 27 && v !== 28) throw new DomainError("BAD_SIGNATURE", "signature v must be 27 or 28");
  if (r === 0n || r >= CURVE_N || s === 0n || s >= CURVE_N) {
    throw new DomainError("BAD_SIGNATURE", "signature r and s must lie in (0, n)");
  }
  if (s > HALF_N) throw new DomainError("BAD_SIGNATURE", "signature s must be in the lower half");
  return {
    r,
    s,
    recovery: v === 27 ? 0 : 1,
    compact: Buffer.from(signature.slice(2, 130), "hex"),
  };
}

export type SignatureBackend = "native" | "js";

interface NativeSecp256k1 {
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean): Uint8Array;
}

let native: NativeSecp256k1 | null | undefined;

/** The native binding, or null when it cannot be loaded on this platform. */
export function loadNativeSecp256k1(): NativeSecp256k1 | null {
  if (native !== undefined) return native;
  try {
    const require = createRequire(import.meta.url);
    native = require("secp256k1/bindings") as NativeSecp256k1;
  } catch {
    native = null;
  }
  return native;
}

function assertDigest(digest: Hex): void {
  if (!digestHex.test(digest))
    // Digests are computed here, never sent by a client: a bad one is a bug.
    throw new InvariantError("digest must be 32 bytes");
}

function nativeRecover(lib: NativeSecp256k1, digest: Hex, sig: ParsedSignature): Address {
  let pub: Uint8Array;
  try {
    pub = lib.ecdsaRecover(sig.compact, sig.recovery, Buffer.from(digest.slice(2), "hex"), false);
  } catch {
    throw new DomainError("BAD_SIGNATURE", "signature does not recover to a public key");
  }
  const hash = keccak256Bytes(pub.subarray(1));
  return getAddress(`0x${Buffer.from(hash.buffer, hash.byteOffset + 12, 20).toString("hex")}`);
}

async function jsRecover(digest: Hex, signature: Hex): Promise<Address> {
  try {
    return await recoverAddress({ hash: digest, signature });
  } catch {
    throw new DomainError("BAD_SIGNATURE", "signature does not recover to a public key");
  }
}

/**
 * Recovers the checksummed signer of a 32-byte digest. `backend` forces one path (tests and
 * benchmarks compare them); by default native is used when available.
 */
export async function recoverSigner(
  digest: Hex,
  signature: string,
  backend?: SignatureBackend,
): Promise<Address> {
  assertDigest(digest);
  const parsed = parseSignature(signature);
  const lib = backend === "js" ? null : loadNativeSecp256k1();
  if (backend === "native" && !lib) throw new Error("native secp256k1 is not available");
  return lib ? nativeRecover(lib, digest, parsed) : jsRecover(digest, signature as Hex);
}

export function activeSignatureBackend(): SignatureBackend {
  return loadNativeSecp256k1() ? "native" : "js";
}
