// Simulated prover operators: each watches the open auctions and bids once per block with a
// fee and bond drawn from the seed, then proves with its own pool of simulated workers.
import type { DomainConfig } from "@prover-boost/core";
import { RelayClient, signQuote } from "@prover-boost/sdk";
import { type ProofBackend, simBackend, startWorkers, type WorkerPool } from "@prover-boost/worker";
import type { LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { operatorKeyOf, pick } from "./seed.ts";

export interface OperatorOptions {
  relayUrl: string;
  domain: DomainConfig;
  seed: string;
  index: number;
  workers: number;
  simDurationsMs: Record<string, number>;
  /** The workers' backend (shared between operators); default: sim with simDurationsMs. */
  backend?: ProofBackend;
  slotDurationMs: number;
  genesisTimeMs: number;
}

export class SimulatedOperator {
  readonly account: LocalAccount;
  private readonly client: RelayClient;
  private readonly bidOn = new Set<number>();
  private pool: WorkerPool | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly opts: OperatorOptions) {
    this.account = privateKeyToAccount(operatorKeyOf(opts.seed, opts.index));
    this.client = new RelayClient({ baseUrl: opts.relayUrl });
  }

  async start(): Promise<void> {
    this.pool = await startWorkers({
      relayUrl: this.opts.relayUrl,
      operatorKey: operatorKeyOf(this.opts.seed, this.opts.index),
      workers: this.opts.workers,
      capacity: 1,
      backend: this.opts.backend ?? simBackend({ durationsMs: this.opts.simDurationsMs }),
      namePrefix: `op${this.opts.index}`,
      waitMs: 5000,
    });
    const loop = async () => {
      if (this.stopped) return;
      await this.bidOnOpenAuctions().catch(() => {});
      if (!this.stopped) this.timer = setTimeout(loop, 150);
    };
    void loop();
  }

  private async bidOnOpenAuctions(): Promise<void> {
    const { items } = await this.client.listAuctions({ status: "open", limit: 50 });
    for (const auction of items) {
      if (this.bidOn.has(auction.blockNumber) || auction.biddingClosesAt <= Date.now()) continue;
      this.bidOn.add(auction.blockNumber);
      const i = this.opts.index;
      const fee = pick(this.opts.seed, 500, auction.maxFeeBps, "fee", i, auction.blockNumber);
      const bond =
        BigInt(auction.minBond) *
        BigInt(pick(this.opts.seed, 1, 5, "bond", i, auction.blockNumber));
      const slot = Math.floor((Date.now() - this.opts.genesisTimeMs) / this.opts.slotDurationMs);
      const quote = {
        epochToProve: auction.blockNumber,
        validUntilSlot: slot + 100,
        bondAmount: bond.toString(),
        prover: this.account.address,
        basisPointFee: fee,
      };
      await this.client.submitBid(quote, await signQuote(this.account, this.opts.domain, quote));
    }
  }

  stats() {
    return this.pool?.stats();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.pool?.stop({ graceMs: 2000 });
  }
}
