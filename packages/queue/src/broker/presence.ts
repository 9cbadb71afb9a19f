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
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Redis } from "ioredis";
import { evalScript, luaScript } from "../redis.ts";
import { luaNow, stretchLua } from "./records.ts";

// KEYS: started, seen, past stretches. ARGV: id, forget after ms, then refreshPresence's gap
// ms, restart flag, due and keep ms (records.ts). Returns Redis's time.
const refreshScript = luaScript(`${luaNow}${stretchLua}
refreshPresence(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now, tonumber(ARGV[3]), ARGV[4], ARGV[5],
  tonumber(ARGV[6]))
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
return now`);

export class BrokerPresence {
  readonly id = randomUUID();
  readonly startedKey: string;
  readonly seenKey: string;
  /** Each broker's past stretches (records.ts, stretchLua). */
  readonly pastKey: string;
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
    this.startedKey = `${prefix}:brokers:started`;
    this.seenKey = `${prefix}:brokers:seen`;
    this.pastKey = `${prefix}:brokers:past`;
    this.keepMs = 2 * gapMs + 60_000;
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
        3,
        this.startedKey,
        this.seenKey,
        this.pastKey,
        this.id,
        String(Math.max(this.gapMs * 4, 3_600_000)),
        ...args,
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
    await this.redis
      .multi()
      .zrem(this.startedKey, this.id)
      .zrem(this.seenKey, this.id)
      .hdel(this.pastKey, this.id)
      .exec()
      .catch(() => {});
  }
}
