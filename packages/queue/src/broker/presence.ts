// Which brokers (relay processes) are up, shared in Redis, so a lapse is judged by whether any
// relay could have taken the worker's heartbeats, not by what the relay that notices it saw.
//
// Each broker refreshes its entry every `intervalMs`, on Redis's clock: one sorted set holds
// when its current stretch of presence started, another when it was last seen. A refresh that
// comes more than `gapMs` (LEASE_MS + 2 s) after the previous one (the process was stopped, or
// lost Redis, for longer than a lease) starts a new stretch, so a stretch means "present and
// able to reach Redis throughout". A clean close removes the entry; a killed process's entry
// simply stops being refreshed.
//
// A broker whose connection to Redis dropped, however briefly, could not take heartbeats while
// it was down: its first refresh after the drop starts a new stretch too (as does a refresh that
// failed), and so does a refresh that Redis runs well after it was due (Redis stalled with its
// connections open: it heard nobody meanwhile). The stretch that ends is kept with the broker's
// recent past ones (records.ts, stretchLua), so a lapse whose window one of them covered is still
// the worker's when the broker drops only afterwards.
//
// A broker that is behind (its process too busy to read requests on time: the relay's event
// loop past OVERLOAD_LAG_MS) is there but cannot hear a heartbeat in time, so it does not count
// as present: every refresh it makes while behind starts a new stretch, and so does its first
// refresh on time afterwards (a stretch begins at a refresh made on time). A lapse whose last
// window it spent behind is then forgiven unless another broker, on time, covered the window; a
// relay that falls behind does not punish the workers it failed to serve.
//
// The rule (applied in records.ts when a lapse is claimed, and when a late heartbeat would take
// back a lock that ran out): a lapse is withholding only if some broker's stretch covered the lease's whole last window, from its last renewal (expiry -
// LEASE_MS; the renewal's own moment where LEASE_MAX_MS cut its extension short) to its expiry (or to when the lapse is claimed, if that is earlier), give or take
// `freshMs` (LEASE_MS / 3, a worker's heartbeat period, or two refreshes if longer) for the
// last-seen time; otherwise no relay was there to hear the
// worker throughout, and the lapse is forgiven (the job goes back without a penalty). The
// claiming broker counts as seen at the moment it claims.
//
// The aggregator reads the same records for proof deadlines (sightBrokers, below; the rule is in
// apps/aggregator/src/deadlines.ts): while no broker is seen able to serve, no block's winner can
// lease or hand in a proof, and its deadline waits. Being able to serve is more than reaching
// Redis: a relay whose readiness check fails (followReadiness: the relay's Postgres, much as /readyz
// checks it) keeps refreshing its stretch (heartbeats need Redis alone, so the lapse rule above
// is unchanged), but marks itself unready since its last good check, and counts as absent for
// deadlines until a check answers again. A clean close records when the broker was last seen
// serving (the `left` key), so that a gap with no relay at all is dated from there, not from
// whenever a relay was last recorded. And a broker ready at a refresh that finds no broker seen
// able to serve within `freshMs` before it (a relay starting after every relay was gone, or whose
// Postgres came back) logs the gap it ends, from that last sighting to now (the `gaps` set, kept
// a week, the newest 1000): an aggregator stopped throughout the gap never saw it, and credits
// it to the blocks whose clocks ran through it once it is back (apps/aggregator/src/rebuild.ts).
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Redis } from "ioredis";
import { evalScript, luaScript } from "../redis.ts";
import { brokerPrefixOf, luaNow, stretchLua } from "./records.ts";

// KEYS: started, seen, past stretches, unready, left, gaps, serving. ARGV: id, forget after ms,
// then refreshPresence's gap ms, restart flag, due and keep ms (records.ts), then '' when the
// broker is ready, else how long ago (ms) it last was (it is marked unready from then, once;
// 'never' for a broker not ready since it started: marked unready from 0, never seen able to
// serve), then freshMs and how long a gap is kept. `serving` holds when each broker was last
// seen able to serve: its last refresh made ready, or its last good answer once unready (only
// this script writes it: a lapse claim's refresh of `seen` does not count). A
// broker ready at this refresh that finds no broker's there, nor a clean close's `left`, within
// freshMs before it ends a gap with no relay serving: it is logged, from that last sighting to
// now (see the header; the newest 1000 are kept, none older than the keep time). No record at
// all (Redis lost its data) logs nothing. A broker forgotten (silent for `forget after` ms) has
// its last sighting serving kept in `left` if it is the latest there. Returns Redis's time.
const refreshScript = luaScript(`${luaNow}${stretchLua}
if ARGV[7] == '' then
  local last = tonumber(redis.call('GET', KEYS[5]) or '0')
  local top = redis.call('ZRANGE', KEYS[7], -1, -1, 'WITHSCORES')
  if top[2] and tonumber(top[2]) > last then last = tonumber(top[2]) end
  if last > 0 and now - last > tonumber(ARGV[8]) then
    redis.call('ZADD', KEYS[6], now, last .. ':' .. now)
    redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - tonumber(ARGV[9]))
    redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -1001)
  end
  redis.call('ZADD', KEYS[7], now, ARGV[1])
end
refreshPresence(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now, tonumber(ARGV[3]), ARGV[4], ARGV[5],
  tonumber(ARGV[6]))
if ARGV[7] == '' then
  redis.call('ZREM', KEYS[4], ARGV[1])
elseif ARGV[7] == 'never' then
  redis.call('ZADD', KEYS[4], 'NX', 0, ARGV[1])
else
  redis.call('ZADD', KEYS[4], 'NX', now - tonumber(ARGV[7]), ARGV[1])
  local since = tonumber(redis.call('ZSCORE', KEYS[4], ARGV[1]))
  local served = redis.call('ZSCORE', KEYS[7], ARGV[1])
  if served and tonumber(served) > since then redis.call('ZADD', KEYS[7], since, ARGV[1]) end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))) do
  local served = redis.call('ZSCORE', KEYS[7], id)
  if served then
    local cur = redis.call('GET', KEYS[5])
    if (not cur) or tonumber(cur) < tonumber(served) then redis.call('SET', KEYS[5], served) end
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[7], id)
end
return now`);

// A clean close. KEYS: started, seen, past stretches, unready, left, serving. ARGV: id, then ''
// when the broker is ready, else how long ago (ms) it last was, or 'never'. The broker's entries
// are removed, and its last sighting able to serve (its last refresh, or when it became unready)
// is kept in `left` if it is the latest there, without an expiry: every broker that ever served
// leaves a trace (a killed one its entries, then `left` once forgotten), so no trace at all
// means Redis lost its data (or no relay ever served). Removals first: a Redis that refuses
// writes (maxmemory) still lets a script that has begun writing finish, so the broker leaves
// even then.
const leaveScript = luaScript(`${luaNow}
local e = redis.call('ZSCORE', KEYS[2], ARGV[1])
local u = redis.call('ZSCORE', KEYS[4], ARGV[1])
if ARGV[2] ~= '' then
  local since = 0
  if ARGV[2] ~= 'never' then since = now - tonumber(ARGV[2]) end
  if (not u) or since < tonumber(u) then u = since end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if e then
  local t = tonumber(e)
  if u and tonumber(u) < t then t = tonumber(u) end
  local cur = redis.call('GET', KEYS[5])
  if t > 0 and ((not cur) or tonumber(cur) < t) then redis.call('SET', KEYS[5], t) end
end
return 1`);

/**
 * A broker's presence timings for LEASE_MS (broker.ts): it refreshes every `intervalMs` (LEASE_MS
 * / 4, 25 ms to 1 s, unless given), and a refresh counts as present for `freshMs` (LEASE_MS / 3,
 * a worker's heartbeat period: a broker seen that recently before a lease ran out was there for
 * one of its heartbeats; or two refreshes if longer).
 */
export function presenceTimingsOf(
  leaseMs: number,
  intervalMs = Math.max(25, Math.min(Math.floor(leaseMs / 4), 1000)),
): { intervalMs: number; freshMs: number } {
  return { intervalMs, freshMs: Math.max(2 * intervalMs, Math.floor(leaseMs / 3)) };
}

/** What sightBrokers read, all on Redis's clock. */
export interface BrokerSighting {
  /** Redis's time of the reading. */
  now: number;
  /**
   * The latest moment a broker still recorded was seen able to serve: its last refresh, or, for
   * one marked unready, when it became unready (whichever is earlier; one never ready since it
   * started does not count). Null: none is recorded.
   */
  servingAt: number | null;
  /** The latest moment a broker that closed cleanly was last seen able to serve, or null. */
  leftAt: number | null;
  /** The gaps with no broker able to serve that a broker logged as it ended them (see the header). */
  gaps: PresenceGap[];
}

/** A stretch of time (Redis's clock) with no broker seen able to serve. */
export interface PresenceGap {
  from: number;
  to: number;
  /** Its entry in the log (the same for every reading). */
  id: string;
}

/** How long a broker keeps a logged gap: longer than any proving window is expected to run. */
export const PRESENCE_GAP_KEEP_MS = 7 * 24 * 3_600_000;

const pairsOf = (flat: string[]): [string, number][] => {
  const out: [string, number][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])]);
  return out;
};

/**
 * Reads when the brokers of the fabric under `fabricPrefix` were last seen able to serve (see
 * the header). Read-only commands only, so it answers while Redis refuses writes.
 */
export async function sightBrokers(redis: Redis, fabricPrefix: string): Promise<BrokerSighting> {
  const keys = presenceKeysOf(brokerPrefixOf(fabricPrefix));
  const replies = await redis
    .pipeline()
    .time()
    .zrange(keys.seen, "0", "-1", "WITHSCORES")
    .zrange(keys.unready, "0", "-1", "WITHSCORES")
    .get(keys.left)
    .zrange(keys.gaps, "0", "-1")
    .exec();
  const values = (replies ?? []).map(([err, value]) => {
    if (err) throw err;
    return value;
  });
  const [time, seen, unready, left, gaps] = values as [
    [string, string],
    string[],
    string[],
    string,
    string[],
  ];
  const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
  const unreadySince = new Map(pairsOf(unready));
  let servingAt: number | null = null;
  for (const [id, at] of pairsOf(seen)) {
    const t = Math.min(at, unreadySince.get(id) ?? Number.POSITIVE_INFINITY);
    // Never ready since it started (0): never seen serving, no record of a relay that served.
    if (t > 0 && (servingAt === null || t > servingAt)) servingAt = t;
  }
  return {
    now,
    servingAt,
    leftAt: left === null ? null : Number(left),
    gaps: gaps.map((g) => {
      const [from, to] = g.split(":").map(Number);
      return { from: from!, to: to!, id: g };
    }),
  };
}

/** The keys of the brokers' presence under a broker prefix (`<fabric prefix>:pb`). */
function presenceKeysOf(prefix: string) {
  return {
    started: `${prefix}:brokers:started`,
    seen: `${prefix}:brokers:seen`,
    past: `${prefix}:brokers:past`,
    unready: `${prefix}:brokers:unready`,
    left: `${prefix}:brokers:left`,
    gaps: `${prefix}:brokers:gaps`,
    serving: `${prefix}:brokers:serving`,
  };
}

/** A readiness check followed by a broker (followReadiness), and what it last said. */
interface Readiness {
  check: () => Promise<unknown>;
  /** A check unanswered this long counts as failed. */
  timeoutMs: number;
  /** performance.now() when the last check that went through answered; null: none yet. */
  readyAt: number | null;
  /** The last check that answered failed. */
  failed: boolean;
  /** performance.now() when the latest check was sent, while it is unanswered. */
  sentAt: number | null;
  /** performance.now() when the oldest check unanswered since the last answer was sent. */
  unansweredSince: number | null;
}

export class BrokerPresence {
  readonly id = randomUUID();
  readonly startedKey: string;
  readonly seenKey: string;
  /** Each broker's past stretches (records.ts, stretchLua). */
  readonly pastKey: string;
  /** Brokers whose readiness check fails, with when they last were ready (see the header). */
  readonly unreadyKey: string;
  /** When a broker that closed cleanly was last seen able to serve (the latest such). */
  readonly leftKey: string;
  /** The gaps with no broker able to serve, logged by the broker that ended each. */
  readonly gapsKey: string;
  /** Each broker's last refresh made ready (for the gaps). */
  readonly servingKey: string;
  private readiness: Readiness | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The timer's refresh under way: stop() waits for it, or it would re-add a stopped entry. */
  private refreshing: Promise<void> | null = null;
  /** The connection dropped (or a refresh failed) since the last refresh that went through. */
  private cutOff = false;
  /** The last refresh sent was sent while behind. */
  private wasBehind = false;
  /** The last refresh that went through: Redis's time when it ran, and when it was sent. */
  private lastRefresh: { redisNow: number; sentAt: number } | null = null;
  /** How long a past stretch is kept: longer than any lease record lives. */
  readonly keepMs: number;
  private readonly onClose = () => {
    this.cutOff = true;
  };

  constructor(
    private readonly redis: Redis,
    prefix: string,
    readonly intervalMs: number,
    /** A longer silence between refreshes starts a new stretch. */
    readonly gapMs: number,
    /** How recent another broker's last refresh must be to count as present. */
    readonly freshMs: number,
    /** True while the broker is behind: each refresh then starts a new stretch. */
    readonly behind: () => boolean = () => false,
  ) {
    const keys = presenceKeysOf(prefix);
    this.startedKey = keys.started;
    this.seenKey = keys.seen;
    this.pastKey = keys.past;
    this.unreadyKey = keys.unready;
    this.leftKey = keys.left;
    this.gapsKey = keys.gaps;
    this.servingKey = keys.serving;
    this.keepMs = 2 * gapMs + 60_000;
  }

  /** How long a broker's entries are kept after its last refresh. */
  private get forgetMs(): number {
    return Math.max(this.gapMs * 4, 3_600_000);
  }

  /**
   * Makes this broker's readiness follow `check` (the relay's Postgres), sent with each refresh
   * (a new one only once the last is answered or `timeoutMs` old). While the last check answered
   * failed, or none has been answered for more than `timeoutMs` (default `freshMs`), the broker is
   * marked unready from its last good answer: it still refreshes its stretch, but counts as
   * absent for proof deadlines (see the header).
   */
  followReadiness(
    check: () => Promise<unknown>,
    { timeoutMs = this.freshMs, readyYet = true }: { timeoutMs?: number; readyYet?: boolean } = {},
  ): void {
    this.readiness = {
      check,
      timeoutMs,
      // Not ready yet (a relay still starting): never seen able to serve until a check answers.
      readyAt: readyYet ? performance.now() : null,
      failed: !readyYet,
      sentAt: null,
      unansweredSince: null,
    };
  }

  /**
   * Sends a readiness check (its answer counts from the next refresh): with each refresh, and at
   * once when the relay starts or stops serving.
   */
  checkReadinessNow(): void {
    const r = this.readiness;
    const sentAt = performance.now();
    if (!r || (r.sentAt !== null && sentAt - r.sentAt <= r.timeoutMs)) return;
    r.sentAt = sentAt;
    r.unansweredSince ??= sentAt;
    Promise.resolve()
      .then(r.check)
      .then(
        () => {
          r.failed = false;
          r.readyAt = performance.now();
        },
        () => {
          r.failed = true;
        },
      )
      .finally(() => {
        r.unansweredSince = null;
        if (r.sentAt === sentAt) r.sentAt = null;
      });
  }

  /**
   * '' while ready (or no readiness is followed), else how long ago (ms) it last was ready, or
   * 'never' for a broker not ready yet since it started.
   */
  private unreadyFor(): string {
    const r = this.readiness;
    if (!r) return "";
    const now = performance.now();
    const stalled = r.unansweredSince !== null && now - r.unansweredSince > r.timeoutMs;
    if (!r.failed && !stalled) return "";
    if (r.readyAt === null) return "never";
    return String(Math.max(0, Math.round(now - r.readyAt)));
  }

  /**
   * refreshPresence's gap, restart, due and keep arguments (records.ts) for a refresh sent now:
   * the stretch starts again if the broker is behind, or was at its last refresh (a stretch
   * begins at a refresh made on time), or was cut off, or if Redis runs the refresh more than
   * `freshMs` later than the last refresh's Redis time plus the time since it was sent.
   */
  stretchArgs(): [string, string, string, string] {
    const behind = this.behind();
    const restart = this.cutOff || behind || this.wasBehind;
    this.wasBehind = behind;
    const last = this.lastRefresh;
    const due = last
      ? String(Math.ceil(last.redisNow + (performance.now() - last.sentAt) + this.freshMs))
      : "";
    return [String(this.gapMs), restart ? "1" : "0", due, String(this.keepMs)];
  }

  async refresh(): Promise<void> {
    const sentAt = performance.now();
    const args = this.stretchArgs();
    this.cutOff = false;
    try {
      const now = await evalScript(
        this.redis,
        refreshScript,
        7,
        this.startedKey,
        this.seenKey,
        this.pastKey,
        this.unreadyKey,
        this.leftKey,
        this.gapsKey,
        this.servingKey,
        this.id,
        String(this.forgetMs),
        ...args,
        this.unreadyFor(),
        String(this.freshMs),
        String(PRESENCE_GAP_KEEP_MS),
      );
      this.lastRefresh = { redisNow: Number(now), sentAt };
    } catch (err) {
      this.cutOff = true;
      throw err;
    }
  }

  /** Announces this broker and keeps refreshing it until stop(). */
  async start(): Promise<void> {
    this.redis.off("close", this.onClose).on("close", this.onClose);
    await this.refresh();
    const tick = () => {
      this.timer = setTimeout(() => {
        this.checkReadinessNow();
        this.refreshing = this.refresh()
          .catch(() => {})
          .finally(() => {
            this.refreshing = null;
            if (this.timer) tick();
          });
      }, this.intervalMs);
      this.timer.unref();
    };
    tick();
  }

  /** Stops refreshing and leaves: this broker no longer takes heartbeats. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.redis.off("close", this.onClose);
    await this.refreshing;
    await evalScript(
      this.redis,
      leaveScript,
      6,
      this.startedKey,
      this.seenKey,
      this.pastKey,
      this.unreadyKey,
      this.leftKey,
      this.servingKey,
      this.id,
      this.unreadyFor(),
    ).catch(() => {});
  }
}
