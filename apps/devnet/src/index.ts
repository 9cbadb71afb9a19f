export { type DevnetBlockReport, type DevnetOptions, runDevnet } from "./devnet.ts";
export { sequencerKeyOf } from "./seed.ts";
export { openBlockAuction, type SequencerOptions } from "./sequencer.ts";
