export { indexedRewardFunding, type RewardFunding } from "./funding.ts";
export { EscrowIndexer, type IndexerHealth, type IndexerOptions } from "./indexer.ts";
export {
  applyEscrowEvent,
  lockAddressesOf,
  PRELOCK_MAX_ADDRESSES,
  reverseMovement,
  type Shortfall,
} from "./movements.ts";
export * from "./reconcile.ts";
export {
  enqueueSettlement,
  escrowMismatches,
  penaltyRef,
  type SettlementAction,
  Settler,
  type SettlerOptions,
} from "./settler.ts";
