// The blocks whose trees are being proven right now, ordered by proof deadline (earliest first),
// with who may lease their jobs: the auction winner while `proving`, anyone in `open_proving`.
// Every lease request asks, and the set changes a few times per block, so it is cached. A change
// is announced (the aggregator's fan-out and deadline steps, this relay's own root proof) and
// drops the cache: the next request waits for a fresh read. Otherwise the cached view is served
// while a re-read runs in the background once it is older than the TTL, which only guards
// against a missed announcement.
//
// The registry is also what closes this relay's BullMQ handles on blocks that stopped being
// active (closeHandlesOfInactiveBlocks): every fresh read is handed to the fabric, which closes
// the queues and fetchers of blocks missing from it, and while any handles are open a slow timer
// keeps reads coming even when no worker asks, so an idle relay lets go of finished blocks too.
import { PROVING_STAGES, type ProvingStage, STAGE } from "@prover-boost/core";
import type { Prisma } from "@prover-boost/db";
import { type QueueKind, treeQueueKinds } from "@prover-boost/queue";

export interface ActiveBlock {
  number: number;
  stage: ProvingStage;
  winner: string | null;
  proofDeadline: number;
  /** The block's transactions (its tree's shape, and so the type of its root job). */
  txCount: number;
}

/** A fresh read of the active blocks, and performance.now() when it began. */
export type RegistryReadListener = (blocks: readonly ActiveBlock[], startedAt: number) => void;

export class BlockRegistry {
  private cache: { at: number; blocks: ActiveBlock[] } | null = null;
  private loading: { generation: number; blocks: Promise<ActiveBlock[]> } | null = null;
  /** Bumped by invalidate(): a read begun before it is not used after it. */
  private generation = 0;
  private readonly listeners = new Set<RegistryReadListener>();

  constructor(
    private readonly prisma: Prisma,
    private readonly ttlMs = 1000,
  ) {}

  /** Calls `listener` after every fresh read; returns a function that stops it. */
  onRead(listener: RegistryReadListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

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
    const startedAt = performance.now();
    const loading = {
      generation,
      blocks: this.load()
        .then((blocks) => {
          if (generation === this.generation) this.cache = { at: now, blocks };
          for (const listener of this.listeners) listener(blocks, startedAt);
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
      (b) => b.stage === STAGE.open_proving || b.winner?.toLowerCase() === op,
    );
  }

  private async load(): Promise<ActiveBlock[]> {
    const rows = await this.prisma.block.findMany({
      where: { stage: { in: [...PROVING_STAGES] } },
      select: {
        number: true,
        stage: true,
        winner: true,
        auction: { select: { proofDeadline: true, txCount: true } },
      },
    });
    return rows
      .map((r) => ({
        number: r.number,
        stage: r.stage as ActiveBlock["stage"],
        winner: r.winner,
        proofDeadline: Number(r.auction.proofDeadline),
        txCount: r.auction.txCount,
      }))
      .sort((a, b) => a.proofDeadline - b.proofDeadline || a.number - b.number);
  }
}

/** The part of the fabric that holds per-block handles (ProofFabric). */
export interface BlockHandleOwner {
  openHandles(): { blocks: number[] };
  closeInactive(active: ReadonlySet<number>, readStartedAt: number): Promise<number[]>;
}

/**
 * Closes `fabric`'s handles on blocks the registry no longer lists as active, after every read,
 * and reads at least every `everyMs` while any handles are open. Returns a function that stops it.
 */
export function closeHandlesOfInactiveBlocks(
  registry: BlockRegistry,
  fabric: BlockHandleOwner,
  now: () => number,
  everyMs = 1000,
): () => void {
  const stopListening = registry.onRead((blocks, startedAt) => {
    const active = new Set(blocks.map((b) => b.number));
    void fabric.closeInactive(active, startedAt).catch(() => {});
  });
  const timer = setInterval(() => {
    // A failed read (database down) is retried at the next tick.
    if (fabric.openHandles().blocks.length > 0) registry.active(now()).catch(() => {});
  }, everyMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    stopListening();
  };
}

/** The part of the fabric that opens a block's handles ahead of use (ProofFabric). */
export interface BlockHandleOpener {
  prepareBlock(blockNumber: number, kinds: readonly QueueKind[], holdMs: number): Promise<void>;
}

/**
 * Opens `fabric`'s handles on every block the registry reads as active, once per block while it
 * stays active. A block's lapse sweep runs on its fetchers, which otherwise open only when this
 * relay takes one of its jobs or hears the block announced at its fan-out: a relay started after
 * that (a restart, a new process) would never sweep a lease that lapsed on a kind with nothing
 * ready to take (a block's root, alone in its queue), and the job would stay leased for good.
 * Returns a function that stops it.
 */
export function openHandlesOfActiveBlocks(
  registry: BlockRegistry,
  fabric: BlockHandleOpener,
): () => void {
  const opened = new Set<number>();
  return registry.onRead((blocks) => {
    const active = new Set(blocks.map((b) => b.number));
    for (const n of opened) if (!active.has(n)) opened.delete(n);
    for (const b of blocks) {
      if (opened.has(b.number)) continue;
      opened.add(b.number);
      // Active already: no hold beyond the usual rule (closed a little after it stops being so).
      // Not opened (Redis down): tried again at the next read.
      fabric
        .prepareBlock(b.number, treeQueueKinds(b.txCount), 0)
        .catch(() => opened.delete(b.number));
    }
  });
}
