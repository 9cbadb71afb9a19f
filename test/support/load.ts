// Load-test helpers for the concurrency tests: a seeded PRNG (so a failing run's inputs can be
// replayed from its logged seed), an in-place shuffle driven by it, and a bounded pool that keeps
// a fixed number of requests in flight.
/** Deterministic PRNG (mulberry32), so a failing seed can be replayed. */
export function prng(a: number) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const k = Math.floor(rand() * (i + 1));
    [items[i], items[k]] = [items[k]!, items[i]!];
  }
  return items;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
export async function inPool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
