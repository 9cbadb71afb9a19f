// Whether a relay is present, for proof deadlines (the rule is in deadlines.ts's header): read
// from the presence records every relay's broker keeps in Redis (packages/queue's presence.ts),
// converted to this process's clock.
import { presenceTimingsOf, sightBrokers } from "@prover-boost/queue";
import type { AggregatorContext } from "./context.ts";

export interface RelaySighting {
  /** A relay was seen able to serve within relaysFreshMs. */
  present: boolean;
  /**
   * When (ctx.now()'s clock) a relay was last seen able to serve, a relay that closed cleanly
   * included; null when Redis has no record of a relay that served: every relay that ever served
   * leaves one, even when it closes, so Redis lost its data (the relays that are up record
   * themselves again at their next refresh made ready; one never ready counts as no record).
   */
  seenAt: number | null;
  /**
   * The gaps with no relay able to serve that a relay logged as it ended them (presence.ts),
   * oldest first, on ctx.now()'s clock.
   */
  gaps: { from: number; to: number; id: string }[];
}

/** How recent a relay's presence refresh must be for it to be present (presenceTimingsOf). */
export const relaysFreshMs = (ctx: AggregatorContext): number =>
  presenceTimingsOf(ctx.fabric.options.leaseMs).freshMs;

/** Reads the relays' presence now (one round trip, read-only commands). */
export async function sightRelays(ctx: AggregatorContext): Promise<RelaySighting> {
  const s = await sightBrokers(ctx.fabric.redis, ctx.fabric.options.prefix);
  const now = ctx.now();
  // Redis's clock is only used for "how long ago", so the two clocks need not agree.
  const local = (at: number | null) => (at === null ? null : now - Math.max(0, s.now - at));
  const serving = local(s.servingAt);
  const left = local(s.leftAt);
  return {
    present: serving !== null && now - serving <= relaysFreshMs(ctx),
    seenAt: serving === null ? left : left === null ? serving : Math.max(serving, left),
    gaps: s.gaps.map((g) => ({ from: local(g.from)!, to: local(g.to)!, id: g.id })),
  };
}
