// The viem chain of an L1 known only by its id and RPC URL (anvil, or any EVM chain the escrow
// is deployed on): native currency ether, one HTTP endpoint.
import { type Chain, defineChain } from "viem";

export function l1Chain(id: number, url?: string, name = `chain ${id}`): Chain {
  return defineChain({
    id,
    name,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: url ? [url] : [] } },
  });
}
