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
// failed). The stretch that ends is kept, with the broker's last PAST_STRETCHES ones
// (records.ts), so a lapse whose window one of them covered is still the worker's when the
// broker drops only afterwards.
//
// A broker that is behind (its process too busy to read requests on time: the relay's event
// loop past OVERLOAD_LAG_MS) is there but cannot hear a heartbeat in time, so it does not count
// as present: every refresh it makes while behind starts a new stretch. A lapse whose last window
// it spent behind is then forgiven unless another broker, on time, covered the window; a relay
// that falls behind does not punish the workers it failed to serve.
//
// The rule (applied in records.ts when a lapse is claimed, and when a late heartbeat would take
// back a lock that ran out): a lapse is withholding only if some broker's stretch covered the lease's whole last window, from its last renewal (expiry -
// LEASE_MS) to its expiry (or to when the lapse is claimed, if that is earlier), give or take
// `freshMs` (LEASE_MS / 3, a worker's heartbeat period, or two refreshes if longer) for the
// last-seen time; otherwise no relay was there to hear the
// worker throughout, and the lapse is forgiven (the job goes back without a penalty). The
// claiming broker counts as seen at the moment it claims.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { evalScript } from "../redis.ts";
import { luaNow, stretchLua } from "./records.ts";

// KEYS: started, seen, past stretches. ARGV: id, gap ms, forget after ms, '1' to start a new
// stretch (the broker is behind, or was cut off from Redis).
const refreshScript = `${luaNow}${stretchLua}
local seen = redis.call('ZSCORE', KEYS[2], ARGV[1])
if ARGV[4] == '1' or (not seen) or now - tonumber(seen) > tonumber(ARGV[2]) then
  newStretch(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now)
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
return now`;

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
  }

  /** Whether this broker's next refresh starts a new stretch: it is behind, or was cut off. */
  startsStretch(): boolean {
    return this.cutOff || this.behind();
  }

  async refresh(): Promise<void> {
    const restart = this.startsStretch();
    this.cutOff = false;
    try {
      await evalScript(
        this.redis,
        refreshScript,
        3,
        this.startedKey,
        this.seenKey,
        this.pastKey,
        this.id,
        String(this.gapMs),
        String(Math.max(this.gapMs * 4, 3_600_000)),
        restart ? "1" : "0",
      );
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
