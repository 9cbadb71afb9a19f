import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { address, inputErrorCode, uint, uintString, uintText } from "./primitives.ts";

const codeOf = (r: { success: boolean; error?: { issues: readonly unknown[] } }) =>
  r.success ? "ok" : (inputErrorCode(r.error!.issues) ?? "VALIDATION_FAILED");

describe("address", () => {
  const a = privateKeyToAccount(`0x${"42".repeat(32)}`).address;
  const flipped = a.replace(/[a-f]/, (c) => c.toUpperCase());

  it("accepts the checksummed form and one-case hex, and returns it checksummed", () => {
    for (const v of [a, a.toLowerCase(), `0x${a.slice(2).toUpperCase()}`]) {
      expect(address.parse(v)).toBe(a);
    }
  });

  it("refuses mixed case with a wrong checksum as BAD_ADDRESS_CHECKSUM", () => {
    expect(flipped).not.toBe(a);
    expect(codeOf(address.safeParse(flipped))).toBe("BAD_ADDRESS_CHECKSUM");
  });

  it("refuses what is not 0x + 40 hex as VALIDATION_FAILED", () => {
    for (const v of [
      a.slice(2),
      `0X${a.slice(2)}`,
      `${a}0`,
      a.slice(0, -1),
      `0x${"g".repeat(40)}`,
    ]) {
      expect(codeOf(address.safeParse(v)), v).toBe("VALIDATION_FAILED");
    }
  });
});

describe("integers", () => {
  const loose = [" 1", "1 ", "+1", "-1", "01", "00", "0x10", "1e3", "1.0", "", "٣", "-0", "1_0"];

  it("path and query integers: canonical decimal only, within range", () => {
    const t = uintText(1000);
    expect(t.parse("0")).toBe(0);
    expect(t.parse("1000")).toBe(1000);
    for (const v of [...loose, "1001", "99999999999999999999"]) {
      expect(codeOf(t.safeParse(v)), JSON.stringify(v)).toBe("INVALID_INTEGER");
    }
    expect(codeOf(uintText(500, 1).safeParse("0"))).toBe("INVALID_INTEGER");
  });

  it("small uints: a safe JSON integer or a canonical decimal string", () => {
    const u = uint();
    expect(u.parse(7)).toBe(7);
    expect(u.parse("7")).toBe(7);
    expect(u.parse(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(Object.is(u.parse(-0), 0)).toBe(true);
    for (const v of [...loose, -1, 1.5, 2 ** 53, "9007199254740992"]) {
      expect(codeOf(u.safeParse(v)), String(v)).toBe("INVALID_INTEGER");
    }
    expect(codeOf(uint(10).safeParse(11))).toBe("INVALID_INTEGER");
    expect(codeOf(u.safeParse(true))).toBe("VALIDATION_FAILED");
  });

  it("uint256 amounts: canonical decimal strings below 2^256", () => {
    const max = (2n ** 256n - 1n).toString();
    expect(uintString.parse(max)).toBe(2n ** 256n - 1n);
    expect(uintString.parse("0")).toBe(0n);
    for (const v of [...loose, (2n ** 256n).toString(), "1".repeat(80)]) {
      expect(codeOf(uintString.safeParse(v)), v).toBe("INVALID_INTEGER");
    }
    expect(codeOf(uintString.safeParse(5))).toBe("VALIDATION_FAILED");
  });
});
