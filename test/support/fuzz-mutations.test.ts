// The body fuzzer's own rule: an op's value goes into a body as a copy. The fuzz suites share
// their op values between runs (some are constants); a value inserted by reference was changed
// in place by the next op and, once an op put a value inside itself, every later body holding
// it failed to render ("Converting circular structure to JSON").
import { describe, expect, it } from "vitest";
import { bodyText, type Op } from "./fuzz-mutations.ts";

describe("fuzzed bodies", () => {
  it("never change or nest an op's own value", () => {
    const op: Op = { t: "extra", key: "constructor", value: { prototype: { polluted: true } } };
    const spec = {
      kind: "valid" as const,
      base: 0,
      resign: false,
      // The op, again on the object it just added, then a set inside that object.
      mutations: [
        { at: 0, op },
        { at: 1, op },
        { at: 2, op: { t: "set", value: "x" } as Op },
      ],
    };
    const first = bodyText(spec, [{}]);
    expect(first).toBe(
      '{"constructor":{"prototype":"x","constructor":{"prototype":{"polluted":true}}}}',
    );
    expect(op).toEqual({
      t: "extra",
      key: "constructor",
      value: { prototype: { polluted: true } },
    });
    expect(bodyText(spec, [{}])).toBe(first);
  });
});
