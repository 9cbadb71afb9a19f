// Live devnet progress: a bar per block on a terminal (stage, proofs done of total), plain
// lines otherwise; and the closing summary table.

import type { BlockView } from "@prover-boost/sdk";
import { MultiBar, Presets, type SingleBar } from "cli-progress";
import type { DevnetBlockReport, DevnetChainReport } from "./devnet.ts";

export class ProgressView {
  private readonly multi: MultiBar | null;
  private readonly bars = new Map<number, SingleBar>();

  constructor(tty: boolean) {
    this.multi = tty
      ? new MultiBar(
          {
            format: " block {block} | {bar} | {value}/{total} proofs | {stage}",
            hideCursor: true,
            clearOnComplete: false,
            stopOnComplete: false,
          },
          Presets.shades_grey,
        )
      : null;
  }

  info(message: string) {
    if (this.multi) this.multi.log(`${message}\n`);
    else console.log(message);
  }

  update(view: BlockView) {
    const total = Math.max(view.tree.total, 1);
    if (!this.multi) {
      console.log(
        `block ${view.number}: ${view.stage} (${view.tree.proven}/${view.tree.total} proofs)`,
      );
      return;
    }
    let bar = this.bars.get(view.number);
    if (!bar) {
      bar = this.multi.create(total, 0, { block: view.number, stage: view.stage });
      this.bars.set(view.number, bar);
    }
    bar.setTotal(total);
    bar.update(view.tree.proven, { block: view.number, stage: view.stage });
  }

  stop() {
    this.multi?.stop();
  }

  static chainSummary(chain: DevnetChainReport) {
    console.log(`\nescrow ${chain.escrow}`);
    for (const s of chain.settlements) {
      console.log(
        `  block ${s.block} ${s.kind.padEnd(6)} ${s.status.padEnd(9)} ${s.txHash ?? "-"}`,
      );
    }
    console.log("reconciliation (escrow free/locked/pending vs ledger):");
    for (const r of chain.reconciliation) {
      console.log(
        `  ${r.address} ${r.chain.free}/${r.chain.locked}/${r.chain.pending} vs ${r.ledger.free}/${r.ledger.locked}/${r.ledger.pending} ${r.matches ? "ok" : "MISMATCH"}`,
      );
    }
    console.log(chain.reconciled ? "escrow and ledger agree" : "escrow and ledger DISAGREE");
  }

  static summary(blocks: DevnetBlockReport[], proofSystem: string) {
    console.log(`\nproof system: ${proofSystem}${proofSystem === "sim" ? " (simulated)" : ""}`);
    console.log(
      "block  stage  winner                                      fee   jobs  makespan  root proof",
    );
    for (const b of blocks) {
      console.log(
        `${String(b.number).padEnd(6)} ${b.stage.padEnd(6)} ${(b.winner ?? "-").padEnd(43)} ${String(b.feeBps ?? "-").padEnd(5)} ${String(b.jobs).padEnd(5)} ${`${b.makespanMs ?? "-"} ms`.padEnd(9)} ${b.rootProof?.slice(0, 18) ?? "-"}…`,
      );
      const sum = b.payouts.reduce((s, p) => s + BigInt(p.amount), 0n);
      // Only a paid block's payouts add up to its reward: the others are not judged.
      const verdict =
        b.stage === "expired"
          ? "expired: nobody proved it in open proving, its reward goes back to the sequencer"
          : b.stage !== "paid"
            ? "not paid"
            : sum === BigInt(b.blockReward)
              ? "exact"
              : "MISMATCH";
      console.log(
        `       payouts: ${b.payouts.length} recipients, ${sum} wei of ${b.blockReward} (${verdict})`,
      );
    }
  }
}
