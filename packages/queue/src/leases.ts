// The relay's own lease map, kept in Redis so every relay process sees it. BullMQ's lock is the
// lease itself (it lapses after LEASE_MS without a heartbeat); this map records who holds it,
// which BullMQ does not: job -> { session, operator, token, expiry }, and per session a sorted
// set of held jobs scored by expiry, used for the capacity check.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { evalScript } from "./redis.ts";

export interface Lease {
  jobId: string;
  queue: string;
  sessionId: string;
  operator: string;
  workerName: string;
  token: string;
  leasedAt: number;
  expiresAt: number;
}

/**
 * A lease's id where it is recorded outside Redis (the job's row in Postgres): a digest of its
 * token, which identifies the lease without handing out the token that BullMQ's lock checks.
 */
export const leaseIdOf = (token: string): string =>
  createHash("sha256").update(token).digest("base64url").slice(0, 22);

// Reserves one capacity slot for a session atomically: drops lapsed entries, then adds a
// placeholder member if fewer than `capacity` live leases remain. Returns 1 when reserved.
const reserveSlotScript = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0`;

export class LeaseBook {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private leaseKey(jobId: string) {
    return `${this.prefix}:lease:${jobId}`;
  }
  private sessionKey(sessionId: string) {
    return `${this.prefix}:session-leases:${sessionId}`;
  }

  /** Reserves a slot under `member` until `untilMs`; false when the session is at capacity. */
  async reserveSlot(
    sessionId: string,
    capacity: number,
    member: string,
    nowMs: number,
    untilMs: number,
  ): Promise<boolean> {
    const ok = await evalScript(
      this.redis,
      reserveSlotScript,
      1,
      this.sessionKey(sessionId),
      String(nowMs),
      String(capacity),
      String(untilMs),
      member,
      String(Math.max(untilMs - nowMs, 1) + 86_400_000),
    );
    return ok === 1;
  }

  async releaseSlot(sessionId: string, member: string): Promise<void> {
    await this.redis.zrem(this.sessionKey(sessionId), member);
  }

  /** Records a lease (replacing the slot placeholder by the job id). */
  async record(lease: Lease, placeholder: string): Promise<void> {
    await this.redis
      .multi()
      .set(this.leaseKey(lease.jobId), JSON.stringify(lease))
      .zrem(this.sessionKey(lease.sessionId), placeholder)
      .zadd(this.sessionKey(lease.sessionId), lease.expiresAt, lease.jobId)
      .exec();
  }

  async get(jobId: string): Promise<Lease | null> {
    const raw = await this.redis.get(this.leaseKey(jobId));
    return raw ? (JSON.parse(raw) as Lease) : null;
  }

  async extend(lease: Lease, expiresAt: number): Promise<void> {
    await this.redis
      .multi()
      .set(this.leaseKey(lease.jobId), JSON.stringify({ ...lease, expiresAt }))
      .zadd(this.sessionKey(lease.sessionId), expiresAt, lease.jobId)
      .exec();
  }

  /** Forgets a lease (job finished, released, or its lapse handled). */
  async drop(lease: Lease): Promise<void> {
    await this.redis
      .multi()
      .del(this.leaseKey(lease.jobId))
      .zrem(this.sessionKey(lease.sessionId), lease.jobId)
      .exec();
  }

  async liveCount(sessionId: string, nowMs: number): Promise<number> {
    return this.redis.zcount(this.sessionKey(sessionId), `(${nowMs}`, "+inf");
  }

  /** Every lease entry whose expiry has passed (lapsed without a heartbeat). */
  async lapsed(nowMs: number, limit = 1000): Promise<Lease[]> {
    const out: Lease[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(
        cursor,
        "MATCH",
        `${this.prefix}:lease:*`,
        "COUNT",
        500,
      );
      cursor = next;
      if (keys.length > 0) {
        const values = await this.redis.mget(...keys);
        for (const raw of values) {
          if (!raw) continue;
          const lease = JSON.parse(raw) as Lease;
          if (lease.expiresAt <= nowMs) out.push(lease);
        }
      }
    } while (cursor !== "0" && out.length < limit);
    return out;
  }
}
