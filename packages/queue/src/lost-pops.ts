// Pops whose replies are lost. A pop is BullMQ's moveToActive under the lease attempt's token,
// on the fetcher's connection, which (as BullMQ expects) sends a command again when its
// connection dropped before the reply came. If Redis had run the first one, the second takes
// another job under the same token: the attempt gets that one, and the first is left locked
// under a token nobody holds or recorded, out of every worker's reach until its lock runs out (a
// lease's length; its lapse blames nobody, having no record). A pop that failed at its deadline
// may still run later and leave the same. So after such a pop every job locked under its token,
// but the one it brought, goes back to its queue, read on the pop's own connection (so behind any
// pop sent again) and retried until Redis answers, at most for a lock's length.
import { setTimeout as sleep } from "node:timers/promises";
import type { Worker } from "bullmq";
import type { ProofJobData } from "./catalog.ts";
import type { Redis } from "./redis.ts";

/** How far down a queue's active list an orphan is looked for (pops push to its head). */
const ACTIVE_DEPTH = 4096;

/**
 * Watches a fetcher's pops: after one whose connection dropped while it was in flight, or one
 * that failed, the jobs locked under its token but the one it brought go back to their queue,
 * and `announce` tells lessees they are ready.
 */
export function watchLostPops(
  fetcher: Worker<ProofJobData>,
  announce: () => Promise<unknown>,
): void {
  let drops = 0;
  fetcher
    .getBackend()
    .client.then((client) => (client as unknown as Redis).on("close", () => drops++))
    .catch(() => {});
  const pop = fetcher.getNextJob.bind(fetcher);
  fetcher.getNextJob = async (token, opts) => {
    const before = drops;
    let job: Awaited<ReturnType<typeof pop>>;
    try {
      job = await pop(token, opts);
    } catch (err) {
      if (token) giveBackOrphans(fetcher, token, undefined, announce);
      throw err;
    }
    if (drops !== before && token) giveBackOrphans(fetcher, token, job?.id, announce);
    return job;
  };
}

/** In the background: every job locked under `token` but `kept` goes back to its queue. */
function giveBackOrphans(
  fetcher: Worker<ProofJobData>,
  token: string,
  kept: string | undefined,
  announce: () => Promise<unknown>,
): void {
  const giveUpAt = Date.now() + (fetcher.opts.lockDuration ?? 30_000);
  void (async () => {
    for (let delayMs = 0; ; delayMs = Math.min(Math.max(2 * delayMs, 25), 1000)) {
      if (delayMs > 0) await sleep(delayMs, undefined, { ref: false });
      try {
        const backend = fetcher.getBackend();
        const client = (await backend.client) as unknown as Redis;
        const ids = (await client.lrange(fetcher.toKey("active"), 0, ACTIVE_DEPTH - 1)).filter(
          (id) => id !== kept,
        );
        if (ids.length === 0) return;
        const locks = await client.mget(ids.map((id) => fetcher.toKey(`${id}:lock`)));
        const orphans = ids.filter((_, i) => locks[i] === token);
        if (orphans.length === 0) return;
        // Each move checks the lock is still the token's (BullMQ's own script).
        await Promise.all(orphans.map((id) => backend.moveJobFromActiveToWait(id, token)));
        await announce();
        return;
      } catch {
        if (Date.now() >= giveUpAt) return;
      }
    }
  })();
}
