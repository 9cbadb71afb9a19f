// Pops whose replies are lost. A pop is BullMQ's moveToActive under the lease attempt's token,
// on the fetcher's connection, which (as BullMQ expects) sends a command again when its
// connection dropped before the reply came. If Redis had run the first one, the second takes
// another job under the same token: the attempt gets that one, and the first is left locked
// under a token nobody holds or recorded, out of every worker's reach until its lock runs out (a
// lease's length; its lapse blames nobody, having no record). A pop that failed at its deadline
// may still run later and leave the same.
//
// So the fetchers' pops are watched (watch), and once a take is over (settle: every job it popped
// and passed over has gone back, so the one it brought is the only job its token may hold), the
// jobs locked under the token of a pop that dropped or failed, but the one brought, go back to
// their queue. They are looked for on that pop's own connection (so behind any pop sent again),
// once; the moves are retried until Redis answers, at most for a lock's length.
import type { Worker } from "bullmq";
import type { ProofJobData } from "./catalog.ts";
import type { Redis } from "./redis.ts";
import { retryUntilDone } from "./retry.ts";

type Fetcher = Worker<ProofJobData>;

/** How far down a queue's active list an orphan is looked for (pops push to its head). */
const ACTIVE_DEPTH = 4096;

export class LostPops {
  /** Tokens whose pops dropped or failed, with the fetchers they were sent on. */
  private readonly suspects = new Map<string, Set<Fetcher>>();
  private readonly announcers = new WeakMap<Fetcher, () => Promise<unknown>>();

  /**
   * Watches a fetcher's pops: one whose connection dropped while it was in flight, or one that
   * failed, makes its token a suspect until its take settles. `announce` tells lessees that jobs
   * of the fetcher's queue are ready again.
   */
  watch(fetcher: Fetcher, announce: () => Promise<unknown>): void {
    this.announcers.set(fetcher, announce);
    let drops = 0;
    fetcher
      .getBackend()
      .client.then((client) => (client as unknown as Redis).on("close", () => drops++))
      .catch(() => {});
    const pop = fetcher.getNextJob.bind(fetcher);
    fetcher.getNextJob = async (token, opts) => {
      const before = drops;
      try {
        const job = await pop(token, opts);
        if (drops !== before) this.suspect(token, fetcher);
        return job;
      } catch (err) {
        this.suspect(token, fetcher);
        throw err;
      }
    };
  }

  /**
   * A take under `token` is over, `kept` the job it brought (if any): should one of its pops
   * have dropped or failed, every other job locked under the token goes back (in the
   * background).
   */
  settle(token: string, kept: string | undefined): void {
    const fetchers = this.suspects.get(token);
    if (!fetchers) return;
    this.suspects.delete(token);
    for (const fetcher of fetchers) {
      giveBackOrphans(fetcher, token, kept, this.announcers.get(fetcher) ?? (async () => {}));
    }
  }

  private suspect(token: string | undefined, fetcher: Fetcher): void {
    if (!token) return;
    const fetchers = this.suspects.get(token) ?? new Set<Fetcher>();
    fetchers.add(fetcher);
    this.suspects.set(token, fetchers);
  }
}

/** In the background: the jobs of the fetcher's queue locked under `token`, but `kept`, go back. */
function giveBackOrphans(
  fetcher: Fetcher,
  token: string,
  kept: string | undefined,
  announce: () => Promise<unknown>,
): void {
  const lockKey = (id: string) => fetcher.toKey(`${id}:lock`);
  let orphans: string[] | undefined;
  let moved = false;
  void retryUntilDone(
    async () => {
      const backend = fetcher.getBackend();
      const client = (await backend.client) as unknown as Redis;
      if (!orphans) {
        const ids = (await client.lrange(fetcher.toKey("active"), 0, ACTIVE_DEPTH - 1)).filter(
          (id) => id !== kept,
        );
        const locks = ids.length > 0 ? await client.mget(ids.map(lockKey)) : [];
        orphans = ids.filter((_, i) => locks[i] === token);
      }
      // Each move checks that the lock is still the token's (BullMQ's own script); one that
      // failed is done once the lock is no longer the token's.
      const left: string[] = [];
      for (const [i, outcome] of (
        await Promise.allSettled(orphans.map((id) => backend.moveJobFromActiveToWait(id, token)))
      ).entries()) {
        if (outcome.status === "fulfilled") moved = true;
        else left.push(orphans[i]!);
      }
      const locks = left.length > 0 ? await client.mget(left.map(lockKey)) : [];
      orphans = left.filter((_, i) => locks[i] === token);
      if (orphans.length > 0) throw new Error("orphans left");
      if (moved) await announce();
    },
    Date.now() + (fetcher.opts.lockDuration ?? 30_000),
  );
}
