// The blocks whose trees are being proven right now, ordered by proof deadline (earliest first),
// with who may lease their jobs: the auction winner while `proving`, anyone in `open_proving`.
// Cached briefly: lease requests are frequent and stage changes rare.
import type { Prisma } from "@prover-boost/db";

export interface ActiveBlock {
  number: number;
  stage: "proving" | "open_proving";
  winner: string | null;
  proofDeadline: number;
}

export class BlockRegistry {
  private cache: { at: number; blocks: ActiveBlock[] } | null = null;
  private loading: Promise<ActiveBlock[]> | null = null;

  constructor(
    private readonly prisma: Prisma,
    private readonly ttlMs = 200,
  ) {}

  invalidate(): void {
    this.cache = null;
  }

  async active(now: number): Promise<ActiveBlock[]> {
    if (this.cache && now - this.cache.at < this.ttlMs) return this.cache.blocks;
    this.loading ??= this.load().finally(() => {
      this.loading = null;
    });
    const blocks = await this.loading;
    this.cache = { at: now, blocks };
    return blocks;
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
