// The replay-safe authorizations' typed data: the exact structs of the API contract, and which
// changes of the signed values or of the domain stop a signature from verifying.
import { keccak256, toBytes } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { recoverSigner } from "./signature.ts";
import {
  bidCancellationTypedData,
  bidCancellationTypes,
  hashBidCancellation,
  hashWorkerLogin,
  type WorkerLogin,
  workerLoginTypedData,
  workerLoginTypes,
} from "./typed-data.ts";

const encodeType = (name: string, fields: readonly { name: string; type: string }[]) =>
  `${name}(${fields.map((f) => `${f.type} ${f.name}`).join(",")})`;

const domain = {
  name: "Aztec Rollup",
  version: "1",
  chainId: 31337n,
  verifyingContract: "0x00000000000000000000000000000000000000B0",
} as const;
const operator = privateKeyToAccount(`0x${"0a".repeat(32)}`);
const login: WorkerLogin = {
  operator: operator.address,
  workerId: "w-1",
  capacity: 2,
  jobTypes: ["base", "merge"],
  tier: 1,
  nonce: `0x${"ab".repeat(32)}`,
  issuedAt: 1_800_000_000_000n,
};

describe("authorization structs", () => {
  it("are the contract's WorkerLogin and BidCancellation", () => {
    expect(encodeType("WorkerLogin", workerLoginTypes.WorkerLogin)).toBe(
      "WorkerLogin(address operator,string workerId,uint32 capacity,string[] jobTypes,uint8 tier,bytes32 nonce,uint64 issuedAt)",
    );
    expect(encodeType("BidCancellation", bidCancellationTypes.BidCancellation)).toBe(
      "BidCancellation(bytes32 bidId,address prover,uint64 issuedAt)",
    );
  });

  it("a signed login verifies as signed, and not with any session term or the domain changed", async () => {
    const signature = await operator.signTypedData(workerLoginTypedData(domain, login));
    expect(await recoverSigner(hashWorkerLogin(domain, login), signature)).toBe(operator.address);
    const altered: [string, WorkerLogin, typeof domain | Record<string, unknown>][] = [
      ["capacity", { ...login, capacity: 3 }, domain],
      ["job types", { ...login, jobTypes: ["base", "merge", "block_root"] }, domain],
      ["job type order", { ...login, jobTypes: ["merge", "base"] }, domain],
      ["tier", { ...login, tier: 2 }, domain],
      ["nonce", { ...login, nonce: `0x${"ac".repeat(32)}` }, domain],
      ["worker id", { ...login, workerId: "w-2" }, domain],
      ["chain id", login, { ...domain, chainId: 1n }],
      [
        "contract",
        login,
        { ...domain, verifyingContract: "0x00000000000000000000000000000000000000C1" },
      ],
      ["two-field domain", login, { name: "Aztec Rollup", version: "1" }],
    ];
    for (const [what, l, d] of altered) {
      const digest = hashWorkerLogin(d as typeof domain, l);
      expect(await recoverSigner(digest, signature), what).not.toBe(operator.address);
    }
  });

  it("a cancellation is bound to its bid id", async () => {
    const bidId = keccak256(toBytes("bid"));
    const c = { bidId, prover: operator.address, issuedAt: 1_800_000_000_000n };
    const signature = await operator.signTypedData(bidCancellationTypedData(domain, c));
    expect(await recoverSigner(hashBidCancellation(domain, c), signature)).toBe(operator.address);
    const other = { ...c, bidId: keccak256(toBytes("another bid")) };
    expect(await recoverSigner(hashBidCancellation(domain, other), signature)).not.toBe(
      operator.address,
    );
  });
});
