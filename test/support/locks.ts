// Which Postgres backends wait on another's locks: for tests that hold a transaction open and
// need to know that the one under test has reached the lock it holds.
import type { Prisma } from "@prover-boost/db";

/** How many backends are waiting on a lock held by the backend `pid`. */
export async function blockedBy(prisma: Prisma, pid: number): Promise<number> {
  const rows = await prisma.$queryRaw<{ n: bigint }[]>`
    SELECT count(*) AS n FROM pg_stat_activity WHERE ${pid}::int = ANY(pg_blocking_pids(pid))`;
  return Number(rows[0]!.n);
}
