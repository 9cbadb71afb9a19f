// A base job's transaction data, as the sequencer uploaded it with the auction, for the lease
// answer. Every base lease asks, so the per-job path must not cost a Postgres round trip each:
// a block's data is written in the transaction that creates its auction and never changes, so
// whether a block has any is read once and remembered (most blocks have none), and the lookups
// of blocks that do are gathered into one query per turn of the event loop (group-commit.ts).
import { blockHasTxData, blockTxDataMany, type Prisma } from "@prover-boost/db";
import type { Hex } from "viem";
import { GroupCommit } from "./group-commit.ts";

/** How many blocks' "has data" answers are remembered (blocks being proven are a handful). */
const REMEMBERED_BLOCKS = 256;

export class TxDataReader {
  private readonly hasData = new Map<number, Promise<boolean>>();
  private readonly lookups: GroupCommit<{ blockNumber: number; hash: string }, Hex | null>;

  constructor(private readonly prisma: Prisma) {
    this.lookups = new GroupCommit((asked) => blockTxDataMany(prisma, asked), {
      maxBatch: 512,
      maxInFlight: 4,
    });
  }

  /** The transaction's data, or null when none was uploaded. */
  async of(blockNumber: number, hash: string): Promise<Hex | null> {
    if (!(await this.blockHasData(blockNumber))) return null;
    return this.lookups.submit({ blockNumber, hash });
  }

  private blockHasData(blockNumber: number): Promise<boolean> {
    let known = this.hasData.get(blockNumber);
    if (!known) {
      known = blockHasTxData(this.prisma, blockNumber);
      // A failed read is not remembered: the next lease asks again.
      known.catch(() => this.hasData.delete(blockNumber));
      if (this.hasData.size >= REMEMBERED_BLOCKS) {
        this.hasData.delete(this.hasData.keys().next().value!);
      }
      this.hasData.set(blockNumber, known);
    }
    return known;
  }
}
