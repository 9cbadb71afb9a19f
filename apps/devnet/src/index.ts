export { type DevnetBlockReport, type DevnetOptions, runDevnet } from "./devnet.ts";
