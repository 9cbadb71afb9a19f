// The blocks whose trees are being proven right now, ordered by proof deadline (earliest first),
// with who may lease their jobs: the auction winner while `proving`, anyone in `open_proving`.
// Every lease request asks, and the set changes a few times per block, so it is cached. A change
// is announced (the aggregator's fan-out and deadline steps, this relay's own root proof) and
// drops the cache: the next request waits for a fresh read. Otherwise the cached view is served
// while a re-read runs in the background once it is older than the TTL, which only guards
// against a missed announcement.
import type { Prisma } from "@prover-boost/db";

export interface ActiveBlock {
  number: number;
  stage: "proving" | "open_proving";
  winner: string | null;
  proofDeadline: number;
}

export class BlockRegistry {
  private cache: { at: number; blocks: ActiveBlock[] } | null = null;
  private loading: { generation: number; blocks: Promise<ActiveBlock[]> } | null = null;
  /** Bumped by invalidate(): a read begun before it is not used after it. */
  private generation = 0;

  constructor(
    private readonly prisma: Prisma,
    private readonly ttlMs = 1000,
  ) {}

  invalidate(): void {
    this.cache = null;
    this.generation++;
  }

  async active(now: number): Promise<ActiveBlock[]> {
    const cached = this.cache;
    if (cached && now - cached.at < this.ttlMs) return cached.blocks;
    const reading = this.read(now);
    if (cached) {
      reading.catch(() => {}); // a failed background read is retried by the next request
      return cached.blocks;
    }
    return reading;
  }

  private read(now: number): Promise<ActiveBlock[]> {
    if (this.loading?.generation === this.generation) return this.loading.blocks;
    const generation = this.generation;
    const loading = {
      generation,
      blocks: this.load()
        .then((blocks) => {
          if (generation === this.generation) this.cache = { at: now, blocks };
          return blocks;
        })
        .finally(() => {
          if (this.loading === loading) this.loading = null;
        }),
    };
    this.loading = loading;
    return loading.blocks;
  }

  /** Active blocks this operator's workers may lease from, earliest deadline first. */
  async eligible(operator: string, now: number): Promise<ActiveBlock[]> {
    const op = operator.toLowerCase();
    return (await this.active(now)).filter(
      (b) => b.stage === "open_proving" || b.winner?.toLowerCase() === op,
    );
  }

  private async load(): Promise<ActiveBlock[]> {
    const rows = await this.prisma.block.findMany({
      where: { stage: { in: ["proving", "open_proving"] } },
      select: {
        number: true,
        stage: true,
        winner: true,
        auction: { select: { proofDeadline: true } },
      },
    });
    return rows
      .map((r) => ({
        number: r.number,
        stage: r.stage as ActiveBlock["stage"],
        winner: r.winner,
        proofDeadline: Number(r.auction.proofDeadline),
      }))
      .sort((a, b) => a.proofDeadline - b.proofDeadline || a.number - b.number);
  }
}
