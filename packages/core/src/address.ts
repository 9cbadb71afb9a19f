// How an address is read wherever one comes in (requests, configuration): `0x` and 40 hex digits,
// returned checksummed. Mixed case is an EIP-55 checksum and must be right, so a mistyped address
// is caught rather than used; all-lowercase and all-uppercase hex carry no checksum.
import { type Address, getAddress } from "viem";

export type AddressReading =
  | { ok: true; address: Address }
  | { ok: false; problem: "format" | "checksum" };

export function readAddress(text: string): AddressReading {
  if (!/^0x[0-9a-fA-F]{40}$/.test(text)) return { ok: false, problem: "format" };
  const address = getAddress(text);
  const digits = text.slice(2);
  const oneCase = digits === digits.toLowerCase() || digits === digits.toUpperCase();
  if (!oneCase && text !== address) return { ok: false, problem: "checksum" };
  return { ok: true, address };
}
