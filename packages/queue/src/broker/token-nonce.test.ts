import { describe, expect, it } from "vitest";
import { tokenNonce } from "./broker.ts";

describe("tokenNonce", () => {
  it("gives 16 hex digits, never the same twice, across several refills of its pool", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 512 * 4 + 7; i++) {
      const nonce = tokenNonce();
      expect(nonce).toMatch(/^[0-9a-f]{16}$/);
      seen.add(nonce);
    }
    expect(seen.size).toBe(512 * 4 + 7);
  });
});
