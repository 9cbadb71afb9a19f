/**
 * The largest block number the market can hold: its block numbers are Postgres int4 columns, and
 * the relay refuses any larger (INT4_MAX in packages/contract/src/primitives.ts). The escrow
 * takes any uint256, so an escrow event can name a block the market cannot represent.
 */
export const MARKET_MAX_BLOCK = 2_147_483_647n;

/** Whether the market can represent block `n` (0 ..= MARKET_MAX_BLOCK). */
export const inMarketRange = (n: bigint): boolean => n >= 0n && n <= MARKET_MAX_BLOCK;
