// The broker's lease records in Redis, shared by every relay process. BullMQ's lock is the lease
// itself (its key lives LEASE_MS past the last heartbeat, on Redis's clock); a record says who
// holds it, which BullMQ does not. One hash per job, one field per lease token, so a fast
// re-lease adds a record beside a lapsed one instead of overwriting it, and every delete names
// its token (compare-and-delete): nobody can remove another holder's record. Each record's expiry
// is the lock's own (read with PTTL inside the script that writes it, against Redis TIME), so no
// relay's clock takes part, and the hash carries a TTL, so records nobody claims do not pile up.
// Per session, a sorted set of held lease tokens scored by expiry, for the capacity check.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { evalScript, luaScript, scanKeys } from "../redis.ts";

/**
 * Why a heartbeat was refused: the lease is gone (lapsed, claimed, another's), or it arrived once
 * the lease had been held LEASE_MAX_MS from its grant.
 */
export type HeartbeatRefusal = "lost" | "held-too-long";

export interface Lease {
  jobId: string;
  queue: string;
  sessionId: string;
  operator: string;
  workerName: string;
  token: string;
  /** Redis time (unix ms) when the lease was recorded. */
  leasedAt: number;
  /** Redis time (unix ms) when BullMQ's lock lapses without a heartbeat. */
  expiresAt: number;
  /** The presence id of the broker that granted it. */
  brokerId?: string;
  /** A heartbeat renewed it: its worker certainly heard of it. */
  renewed?: boolean;
  /** Redis time (unix ms) of the last heartbeat that extended it. */
  renewedAt?: number;
  /** Times a heartbeat that arrived in time revived its lock after the relay handled it late. */
  revived?: number;
}

/**
 * A lease's id where it is recorded outside Redis (the job's row in Postgres): a digest of its
 * token, which identifies the lease without handing out the token that BullMQ's lock checks.
 */
export const leaseIdOf = (token: string): string =>
  createHash("sha256").update(token).digest("base64url").slice(0, 22);

/** Redis's clock in unix ms, the clock that stamps leases. */
export async function redisNow(redis: Redis): Promise<number> {
  const [secs, micros] = await redis.time();
  return Number(secs) * 1000 + Math.floor(Number(micros) / 1000);
}

/** Redis's clock in unix ms, inside a script. */
export const luaNow = `local __t = redis.call('TIME')
local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)`;

/**
 * The member of a session's set that says the session signed out (endSession): scored +inf, so
 * no sweep of lapsed entries removes it, and no count of live leases (scores up to, not
 * including, +inf) counts it. A session's set holding it reserves no slot again.
 */
export const ENDED_MEMBER = "ended";

/**
 * Lua that reserves a capacity slot: drops the session set's lapsed entries, then adds the
 * placeholder if fewer than `capacity` live leases remain (and the session has not signed out),
 * and sets `reserved` to 1, else 0.
 * Its arguments are Lua expressions (the set's key, the capacity, the placeholder, the hold ms);
 * the lease picker runs it inside its peek (picking.ts), so that a look that finds a job in
 * reach reserves in the same round trip.
 */
export const reserveSlotLua = (set: string, capacity: string, member: string, holdMs: string) => `
local reserved = 0
do
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', ${set}, '-inf', now)
  if not redis.call('ZSCORE', ${set}, '${ENDED_MEMBER}')
    and redis.call('ZCARD', ${set}) < tonumber(${capacity}) then
    redis.call('ZADD', ${set}, now + tonumber(${holdMs}), ${member})
    redis.call('PEXPIRE', ${set}, tonumber(${holdMs}) + 86400000)
    reserved = 1
  end
end`;

// KEYS[1] the session's set. ARGV: capacity. Returns 1 when `capacity` live entries or more
// remain, or the session signed out (read only).
const fullScript = luaScript(`${luaNow}
if redis.call('ZSCORE', KEYS[1], '${ENDED_MEMBER}') then return 1 end
if redis.call('ZCOUNT', KEYS[1], '(' .. now, '(+inf') >= tonumber(ARGV[1]) then return 1 end
return 0`);

// KEYS[1] the session's set. ARGV: capacity, placeholder, hold ms. Returns 1 when reserved.
const reserveSlotScript = luaScript(`${reserveSlotLua("KEYS[1]", "ARGV[1]", "ARGV[2]", "ARGV[3]")}
return reserved`);

// KEYS: the job's records, the session's set, BullMQ's lock, the block's attempt book
// (attempts.ts), the session's recent leases, and optionally the job's children's results
// (BullMQ's "<job key>:processed" hash). ARGV: token, lease JSON, placeholder, record TTL ms, the
// job's field of failed attempts in the book and its cap, how many recent leases to keep. A job
// whose failed attempts reached the cap is not recorded (-1; the placeholder stays, for the next
// job), nor one for a session that signed out since its slot was reserved (-2: its slot given
// back). Recorded only while the lock is this token's; returns {leasedAt, expiresAt} and, with
// the sixth key, the children's results as HGETALL gives them, or 0 when the lock is gone (the
// lease lapsed before it was recorded: nobody heard of it).
const recordScript = luaScript(`${luaNow}
if tonumber(redis.call('HGET', KEYS[4], ARGV[5]) or '0') >= tonumber(ARGV[6]) then
  return -1
end
redis.call('ZREM', KEYS[2], ARGV[3])
if redis.call('ZSCORE', KEYS[2], '${ENDED_MEMBER}') then return -2 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
local expiresAt = now + math.max(redis.call('PTTL', KEYS[3]), 0)
local lease = cjson.decode(ARGV[2])
lease.leasedAt = now
lease.expiresAt = expiresAt
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(lease))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], expiresAt, ARGV[1])
redis.call('LPUSH', KEYS[5], lease.jobId)
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[7]) - 1)
redis.call('PEXPIRE', KEYS[5], ARGV[4])
if KEYS[6] then return {now, expiresAt, redis.call('HGETALL', KEYS[6])} end
return {now, expiresAt}`);

// KEYS: the session's set, its recent leases. ARGV: how long the sign-out is kept (ms). Marks
// the session signed out (ENDED_MEMBER) and returns the jobs of its recent leases.
const endSessionScript = luaScript(`
redis.call('ZADD', KEYS[1], '+inf', '${ENDED_MEMBER}')
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return redis.call('LRANGE', KEYS[2], 0, -1)`);

// After BullMQ extended the lock. KEYS: the job's records, the session's set, the lock. ARGV:
// token, record TTL ms. Returns the new expiry, or 0 when the lock or the record is gone.
const renewScript = luaScript(`${luaNow}
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local lease = cjson.decode(raw)
lease.expiresAt = now + math.max(redis.call('PTTL', KEYS[3]), 0)
lease.renewed = true
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(lease))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], lease.expiresAt, ARGV[1])
return lease.expiresAt`);

/** Where a fabric's brokers keep their records: `<fabric prefix>:pb` (broker.ts). */
export const brokerPrefixOf = (fabricPrefix: string): string => `${fabricPrefix}:pb`;

/** Where a broker keeps each job's lease records: `<this><job id>`. */
export const leaseRecordsPrefixOf = (brokerPrefix: string): string => `${brokerPrefix}:lease:`;

/** Where a broker keeps each session's held leases: `<this><session id>`. */
export const sessionSetPrefixOf = (brokerPrefix: string): string =>
  `${brokerPrefix}:session-leases:`;

/**
 * Where a broker keeps each session's most recent leases (job ids, newest first): a lease its
 * worker never heard of (a long poll answered as the worker cut it short) is among them, found at
 * the session's sign-out.
 */
export const sessionRecentPrefixOf = (brokerPrefix: string): string =>
  `${brokerPrefix}:session-recent:`;

/**
 * Lua defining `freeSlots(recordsKey, sessionPrefix)`: every lease recorded in a job's records
 * gives back its place in its session's capacity (its token leaves the session's set), the
 * records themselves left as they are. For a job whose leases end with no lapse to claim (its
 * block sealed, its tree rebuilt or retired): otherwise each would keep a worker's slot until
 * its expiry, and the worker would be refused new leases meanwhile.
 */
export const freeSlotsLua = `
local function freeSlots(recordsKey, sessionPrefix)
  local recs = redis.call('HGETALL', recordsKey)
  for j = 1, #recs, 2 do
    redis.call('ZREM', sessionPrefix .. cjson.decode(recs[j + 1]).sessionId, recs[j])
  end
end`;

// KEYS: jobs' records. ARGV[1] the session sets' prefix. Frees their slots, then deletes them.
const dropRecordsScript = luaScript(`${freeSlotsLua}
for _, key in ipairs(KEYS) do freeSlots(key, ARGV[1]) end
return redis.call('DEL', unpack(KEYS))`);

/**
 * Deletes the lease records of block `n`'s jobs (job ids are `<n>-...`), each lease's slot in
 * its worker's capacity given back with it (the leases end with the block's tree).
 */
export async function deleteBlockLeaseRecords(
  redis: Redis,
  brokerPrefix: string,
  n: number,
): Promise<void> {
  const all = await scanKeys(redis, `${leaseRecordsPrefixOf(brokerPrefix)}${n}-*`);
  for (let i = 0; i < all.length; i += 500) {
    const keys = all.slice(i, i + 500);
    await evalScript(
      redis,
      dropRecordsScript,
      keys.length,
      ...keys,
      sessionSetPrefixOf(brokerPrefix),
    );
  }
}

/** At most this many past stretches are kept per broker, however recent (presence.ts). */
const PAST_STRETCHES = 32;

/**
 * Lua defining `refreshPresence(startedKey, seenKey, pastKey, id, now, gapMs, restart, due,
 * keepMs)`: the broker is seen now. Its stretch of presence starts again when `restart` is '1'
 * (it is behind, or was cut off from Redis), when it was last seen more than `gapMs` ago, or
 * when this refresh runs after `due` (Redis time; '' for none): Redis was stalled with the
 * refresh waiting in its socket, and heard nobody meanwhile. The stretch that ends joins the
 * broker's past ones, each as [start, last seen] (those seen within `keepMs`, the last
 * PAST_STRETCHES), unless it never outlasted its first refresh: a lapse is judged by every
 * stretch that could have covered its window, so a stretch that ends after the window (a later
 * drop) does not hide it.
 */
export const stretchLua = `
local function refreshPresence(startedKey, seenKey, pastKey, id, now, gapMs, restart, due, keepMs)
  local s = redis.call('ZSCORE', startedKey, id)
  local e = redis.call('ZSCORE', seenKey, id)
  if restart == '1' or (not s) or (not e) or now - tonumber(e) > gapMs
    or (due ~= '' and now > tonumber(due)) then
    if s and e and tonumber(e) > tonumber(s) then
      local past = {}
      for _, p in ipairs(cjson.decode(redis.call('HGET', pastKey, id) or '[]')) do
        if p[2] >= now - keepMs then table.insert(past, p) end
      end
      table.insert(past, {tonumber(s), tonumber(e)})
      while #past > ${PAST_STRETCHES} do table.remove(past, 1) end
      redis.call('HSET', pastKey, id, cjson.encode(past))
    end
    redis.call('ZADD', startedKey, now, id)
  end
  redis.call('ZADD', seenKey, now, id)
end`;

/**
 * Lua defining `presentThrough(lease, now, leaseMs, freshMs, startedKey, seenKey, pastKey,
 * skipId)`: whether some broker (but `skipId`) was present through the lease's last window (see
 * presence.ts): one stretch of it, current or past, began by the lease's last renewal (expiry -
 * LEASE_MS, or the heartbeat's own moment where LEASE_MAX_MS cut its extension short) and was
 * seen up to the window's end (when the lease expired or, if its lock went before that, now),
 * less `freshMs` of slack for the last refresh, but never before the renewal itself (a lease
 * taken moments ago is judged by whether a broker was there when it was taken).
 */
const presentThroughLua = `
local function presentThrough(lease, now, leaseMs, freshMs, startedKey, seenKey, pastKey, skipId)
  local from = lease.expiresAt - leaseMs
  if lease.renewedAt and tonumber(lease.renewedAt) > from then from = tonumber(lease.renewedAt) end
  local to = math.max(math.min(lease.expiresAt, now) - freshMs, from)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', seenKey, to, '+inf')) do
    if id ~= skipId then
      local started = redis.call('ZSCORE', startedKey, id)
      if started and tonumber(started) <= from then return true end
      local past = redis.call('HGET', pastKey, id)
      if past then
        for _, p in ipairs(cjson.decode(past)) do
          if p[1] <= from and p[2] >= to then return true end
        end
      end
    end
  end
  return false
end`;

// A heartbeat, in one round trip: BullMQ's lock is extended (and the job taken off BullMQ's
// stalled set, as its own extendLock does) and the record follows it. KEYS: the lock, the
// queue's stalled set and active list, the job's records, the session's set, the brokers'
// current start, last-seen and past stretches. ARGV: token, lease ms, job id, how long ago the
// heartbeat arrived (ms), record TTL ms, how fresh a broker's last refresh must be, the longest
// the lease may be held from its grant (ms, 0: no limit; the extension stops there, and a
// heartbeat that arrived once it had passed is refused, the lock left to run out). When the lock
// ran out and the lapse has not been swept (the job is still active in BullMQ, nobody else holds
// it, and no later lease of it was recorded), the lock is taken again for this lease if the
// heartbeat arrived by the lease's expiry (the relay read or handled it late), or if no broker
// could have heard the worker through the lease's last window (Redis or every relay was out of
// reach, and the worker's heartbeats could only get through once it was back). A relay's own
// lateness or outage never costs a worker its lease. Returns the new expiry, 0 when the lease
// is lost, or -1 when the heartbeat arrived past the limit, whatever became of the lock since
// (so the refusal says why on the same reckoning of the arrival as the script's, whatever the
// round trip took, and the same whether BullMQ's stalled check swept the job yet or not, until
// the lapse is claimed and the record gone).
const heartbeatScript = luaScript(`${luaNow}${presentThroughLua}
local raw = redis.call('HGET', KEYS[4], ARGV[1])
if not raw then return 0 end
local lease = cjson.decode(raw)
-- Judged at the request's arrival: one that arrived before the limit and was handled after it
-- (a result being verified) keeps what was left of the lease when it arrived.
local longest = tonumber(ARGV[7])
local left = tonumber(lease.leasedAt) + longest - (now - tonumber(ARGV[4]))
-- Past the limit nothing extends it, whatever became of its lock since (run out, swept as a
-- lapse): the refusal names the limit.
if longest > 0 and left <= 0 then return -1 end
local lock = redis.call('GET', KEYS[1])
if lock ~= ARGV[1] then
  if lock then return 0 end
  if not redis.call('LPOS', KEYS[3], ARGV[3]) then return 0 end
  local all = redis.call('HGETALL', KEYS[4])
  for i = 1, #all, 2 do
    if all[i] ~= ARGV[1] and tonumber(cjson.decode(all[i + 1]).leasedAt) > tonumber(lease.leasedAt) then
      return 0
    end
  end
  if now - tonumber(ARGV[4]) > tonumber(lease.expiresAt)
    and presentThrough(lease, now, tonumber(ARGV[2]), tonumber(ARGV[6]), KEYS[6], KEYS[7], KEYS[8], '') then
    return 0
  end
  lease.revived = (lease.revived or 0) + 1
end
local extend = tonumber(ARGV[2])
if longest > 0 and left < extend then extend = left end
redis.call('SET', KEYS[1], ARGV[1], 'PX', extend)
redis.call('SREM', KEYS[2], ARGV[3])
lease.expiresAt = now + extend
lease.renewed = true
lease.renewedAt = now
redis.call('HSET', KEYS[4], ARGV[1], cjson.encode(lease))
redis.call('PEXPIRE', KEYS[4], ARGV[5])
redis.call('ZADD', KEYS[5], lease.expiresAt, ARGV[1])
return lease.expiresAt`);

// KEYS: the job's records, the session's set. ARGV: token. Deletes that lease's record only.
const dropScript = luaScript(`
local n = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n`);

// KEYS: the job's records, BullMQ's lock, the brokers' current start, last-seen and past
// stretches. ARGV: lease ms, how fresh another broker's last refresh must be, the session set
// prefix, the claiming broker's id, the silence that ends a stretch, '1' if the claiming
// broker's stretch starts now (it is behind or was cut off), '1' if it is behind, and the rest
// of refreshPresence's arguments (due, keep ms). The claiming broker is present now (its
// presence is refreshed first, as presence.ts does, so its own timer's delays do not count). Claims (deletes and returns) every record of the job whose
// lock is gone: those leases ended without a heartbeat, result or fail reaching a broker. With
// each, whether a broker was present for the whole of the lease's last window
// (presentThrough, above), not counting the claiming broker if it is behind (heartbeats that
// came in time may be unread in its sockets). A lease no heartbeat ever renewed is forgiven too
// when the broker that granted it is gone (it may have died before its answer reached the
// worker, who then never heard of the lease). The live holder's record is left alone.
const claimLapsedScript = luaScript(`${luaNow}${stretchLua}${presentThroughLua}
refreshPresence(KEYS[3], KEYS[4], KEYS[5], ARGV[4], now, tonumber(ARGV[5]), ARGV[6], ARGV[8],
  tonumber(ARGV[9]))
local skip = ''
if ARGV[7] == '1' then skip = ARGV[4] end
local lock = redis.call('GET', KEYS[2])
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local token, raw = all[i], all[i + 1]
  if token ~= lock then
    local lease = cjson.decode(raw)
    redis.call('HDEL', KEYS[1], token)
    redis.call('ZREM', ARGV[3] .. lease.sessionId, token)
    local present = 0
    if presentThrough(lease, now, tonumber(ARGV[1]), tonumber(ARGV[2]), KEYS[3], KEYS[4], KEYS[5], skip) then
      present = 1
      if not lease.renewed and lease.brokerId then
        local granter = redis.call('ZSCORE', KEYS[4], lease.brokerId)
        if (not granter) or now - tonumber(granter) > tonumber(ARGV[2]) then present = 0 end
      end
    end
    table.insert(out, {raw, present})
  end
end
return out`);

/** A lease that ended without its worker, and whether a broker could have heard from it. */
export interface ClaimedLapse {
  lease: Lease;
  /** A broker was present through the lease's whole last window: the worker was silent. */
  brokerPresent: boolean;
}

export class LeaseRecords {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** How long an unclaimed record outlives its lease. */
    readonly ttlMs: number,
  ) {}

  jobKey(jobId: string) {
    return `${leaseRecordsPrefixOf(this.prefix)}${jobId}`;
  }
  sessionKey(sessionId: string) {
    return `${sessionSetPrefixOf(this.prefix)}${sessionId}`;
  }
  recentKey(sessionId: string) {
    return `${sessionRecentPrefixOf(this.prefix)}${sessionId}`;
  }

  /**
   * Marks a session signed out, for `keepMs` at least: no slot is reserved for it again, by any
   * broker. Returns the job ids of its most recent leases (newest first, some perhaps ended).
   */
  async endSession(sessionId: string, keepMs: number): Promise<string[]> {
    const out = await evalScript(
      this.redis,
      endSessionScript,
      2,
      this.sessionKey(sessionId),
      this.recentKey(sessionId),
      String(Math.ceil(keepMs)),
    );
    return (out as string[]) ?? [];
  }

  /** Reserves a capacity slot under `member` for `holdMs`; false when the session is full. */
  async reserveSlot(sessionId: string, capacity: number, member: string, holdMs: number) {
    const ok = await evalScript(
      this.redis,
      reserveSlotScript,
      1,
      this.sessionKey(sessionId),
      String(capacity),
      member,
      String(holdMs),
    );
    return ok === 1;
  }

  /** Whether the session signed out (endSession). */
  async ended(sessionId: string): Promise<boolean> {
    return (await this.redis.zscore(this.sessionKey(sessionId), ENDED_MEMBER)) !== null;
  }

  /** Whether the session holds `capacity` live leases or reservations (nothing is written). */
  async isFull(sessionId: string, capacity: number): Promise<boolean> {
    return (
      (await evalScript(this.redis, fullScript, 1, this.sessionKey(sessionId), capacity)) === 1
    );
  }

  async releaseSlot(sessionId: string, member: string): Promise<void> {
    await this.redis.zrem(this.sessionKey(sessionId), member);
  }

  /**
   * Records a lease while its lock is held (replacing the slot placeholder); null if lost,
   * "ended" (the placeholder given back, nothing recorded) if the session signed out meanwhile.
   * `cap` (the block's attempt book, the job's field of failed attempts there, the cap):
   * "exhausted", recording nothing, when the job's failed attempts reached the cap. With
   * `processedKey` (the job's BullMQ "<job key>:processed" hash), the lease comes with the
   * children's results read in the same round trip (field -> raw value).
   */
  async record(
    lease: Omit<Lease, "leasedAt" | "expiresAt">,
    lockKey: string,
    placeholder: string,
    cap: { key: string; field: string; max: number },
    recentKept: number,
    processedKey?: string,
  ): Promise<{ lease: Lease; processed?: Record<string, string> } | "exhausted" | "ended" | null> {
    const keys = [
      this.jobKey(lease.jobId),
      this.sessionKey(lease.sessionId),
      lockKey,
      cap.key,
      this.recentKey(lease.sessionId),
      ...(processedKey ? [processedKey] : []),
    ];
    const out = await evalScript(
      this.redis,
      recordScript,
      keys.length,
      ...keys,
      lease.token,
      JSON.stringify(lease),
      placeholder,
      String(this.ttlMs),
      cap.field,
      String(cap.max),
      String(Math.max(1, Math.floor(recentKept))),
    );
    if (Number(out) === -1) return "exhausted";
    if (Number(out) === -2) return "ended";
    if (!Array.isArray(out)) return null;
    const recorded = { ...lease, leasedAt: Number(out[0]), expiresAt: Number(out[1]) };
    if (!processedKey) return { lease: recorded };
    const flat = (out[2] ?? []) as string[];
    const processed: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) processed[flat[i]!] = flat[i + 1]!;
    return { lease: recorded, processed };
  }

  /** After the lock was extended: the record follows it. The new expiry, or null if lost. */
  async renew(lease: Lease, lockKey: string): Promise<number | null> {
    const out = await evalScript(
      this.redis,
      renewScript,
      3,
      this.jobKey(lease.jobId),
      this.sessionKey(lease.sessionId),
      lockKey,
      lease.token,
      String(this.ttlMs),
    );
    return Number(out) > 0 ? Number(out) : null;
  }

  /**
   * A heartbeat (see heartbeatScript): extends the lock and the record, or revives a lock that
   * ran out while the lapse is unswept, when the heartbeat arrived (`arrivedAgoMs` before now)
   * before the lock ran out or no broker in `presence` could have heard it sooner.
   * `queueKey(suffix)`: the job's queue's BullMQ key. The new expiry, or null if lost.
   */
  async heartbeat(
    lease: Lease,
    lockKey: string,
    queueKey: (suffix: string) => string,
    leaseMs: number,
    arrivedAgoMs: number,
    presence: { startedKey: string; seenKey: string; pastKey: string; freshMs: number },
    leaseMaxMs = 0,
  ): Promise<number | HeartbeatRefusal> {
    const out = await evalScript(
      this.redis,
      heartbeatScript,
      8,
      lockKey,
      queueKey("stalled"),
      queueKey("active"),
      this.jobKey(lease.jobId),
      this.sessionKey(lease.sessionId),
      presence.startedKey,
      presence.seenKey,
      presence.pastKey,
      lease.token,
      String(leaseMs),
      lease.jobId,
      String(Math.max(0, Math.round(arrivedAgoMs))),
      String(this.ttlMs),
      String(presence.freshMs),
      String(leaseMaxMs),
    );
    const n = Number(out);
    return n > 0 ? n : n < 0 ? "held-too-long" : "lost";
  }

  /** Every record of a job (the live holder's and lapsed ones not claimed yet). */
  async ofJob(jobId: string): Promise<Lease[]> {
    const all = await this.redis.hvals(this.jobKey(jobId));
    return all.map((raw) => JSON.parse(raw) as Lease).sort((a, b) => b.leasedAt - a.leasedAt);
  }

  /** What drop(lease) deletes, for a script that drops the record along with other work. */
  dropKeys(lease: Lease): { recordsKey: string; sessionKey: string; token: string } {
    return {
      recordsKey: this.jobKey(lease.jobId),
      sessionKey: this.sessionKey(lease.sessionId),
      token: lease.token,
    };
  }

  /** Deletes one lease's record, by its token. True when it was there. */
  async drop(lease: Pick<Lease, "jobId" | "sessionId" | "token">): Promise<boolean> {
    const n = await evalScript(
      this.redis,
      dropScript,
      2,
      this.jobKey(lease.jobId),
      this.sessionKey(lease.sessionId),
      lease.token,
    );
    return Number(n) === 1;
  }

  /** Claims the job's records whose lock is gone (see claimLapsedScript). */
  async claimLapsed(
    jobId: string,
    lockKey: string,
    presence: {
      id: string;
      startedKey: string;
      seenKey: string;
      pastKey: string;
      /** refreshPresence's gap, restart, due and keep arguments, for a refresh sent now. */
      stretchArgs: () => [string, string, string, string];
      behind: () => boolean;
    },
    leaseMs: number,
    freshMs: number,
  ): Promise<ClaimedLapse[]> {
    const [gap, restart, due, keep] = presence.stretchArgs();
    const out = (await evalScript(
      this.redis,
      claimLapsedScript,
      5,
      this.jobKey(jobId),
      lockKey,
      presence.startedKey,
      presence.seenKey,
      presence.pastKey,
      String(leaseMs),
      String(freshMs),
      this.sessionKey(""),
      presence.id,
      gap,
      restart,
      presence.behind() ? "1" : "0",
      due,
      keep,
    )) as [string, number][];
    return out.map(([raw, present]) => ({
      lease: JSON.parse(raw) as Lease,
      brokerPresent: Number(present) === 1,
    }));
  }

  /** Live leases (and slot reservations) of a session, on Redis's clock. */
  async liveCount(sessionId: string): Promise<number> {
    return (await this.liveCounts([sessionId]))[0]!;
  }

  /** liveCount of each session, on one reading of Redis's clock, in one pipeline. */
  async liveCounts(sessionIds: readonly string[]): Promise<number[]> {
    if (sessionIds.length === 0) return [];
    const now = await redisNow(this.redis);
    const pipe = this.redis.pipeline();
    for (const id of sessionIds) pipe.zcount(this.sessionKey(id), `(${now}`, "(+inf");
    const out = (await pipe.exec()) ?? [];
    return out.map(([err, n]) => {
      if (err) throw err;
      return Number(n);
    });
  }

  /** Deletes the records of a finished block's jobs. */
  retireBlock(blockNumber: number): Promise<void> {
    return deleteBlockLeaseRecords(this.redis, this.prefix, blockNumber);
  }
}
