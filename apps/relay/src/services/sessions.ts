// Worker sign-in: an operator-signed WorkerLogin buys a bearer token. Only the token's sha256 is
// stored. Every job call authenticates, so sessions are cached in memory; a session never changes
// after sign-in (its expiry is checked on every call), so the cache only bounds memory and staleness.
// An expired session takes no new lease, but may finish the leases it holds for a bounded time.
//
// Every session term (worker id, capacity, job types, hardware tier) is taken from the signed
// login, and the login's nonce opens one session only: (operator, nonce) is recorded in the same
// transaction as the session, under a primary key, so a captured login cannot open a second one
// on this relay or any other sharing its database. Another relay's logins do not verify here at
// all: the signing domain binds the relay (CHAIN_ID, VERIFYING_CONTRACT).
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { type sessionBody, workerLoginMessage } from "@prover-boost/contract";
import { DomainError, hashWorkerLogin, type JobType, recoverSigner } from "@prover-boost/core";
import type { WorkerSession } from "@prover-boost/db";
import type { z } from "zod";
import type { RelayContext } from "../context.ts";
import { withProvenIdentityCount } from "../identity-limits.ts";

export type SessionRequest = z.output<typeof sessionBody>;
export type LoginRequest = SessionRequest["login"];

/**
 * How far in the future a login's signed issuedAt may be (clock skew between signer and relay).
 * A bid cancellation gets none: the contract refuses any future issuedAt.
 */
export const FUTURE_SKEW_MS = 30_000;

/** Used nonces are swept at most this often per relay process. */
const NONCE_SWEEP_EVERY_MS = 60_000;
const lastSweep = new WeakMap<object, number>();

const tokenHash = (token: string) => createHash("sha256").update(token).digest("hex");

/** The declared job types a worker of this tier may lease under JOB_MIN_TIER. */
export function leasableJobTypes(
  minTier: Readonly<Record<JobType, number>>,
  session: { jobTypes: readonly string[]; tier: number },
): string[] {
  return session.jobTypes.filter((t) => (minTier[t as JobType] ?? 0) <= session.tier);
}

/**
 * Refuses an issuedAt outside [now - maxAgeMs, now + futureSkewMs]: a signed authorization is
 * good for a few minutes after it was signed, and never before (a login within FUTURE_SKEW_MS of
 * clock skew; a bid cancellation not even that).
 */
export function checkIssuedAt(
  ctx: RelayContext,
  issuedAt: number,
  what: string,
  futureSkewMs: number = FUTURE_SKEW_MS,
): void {
  const now = ctx.now();
  if (issuedAt > now + futureSkewMs) {
    throw new DomainError(
      "ISSUED_IN_FUTURE",
      futureSkewMs === 0
        ? `the ${what}'s issuedAt is ahead of the relay's clock`
        : `the ${what}'s issuedAt is in the future (more than ${futureSkewMs / 1000} s ahead of the relay's clock)`,
    );
  }
  if (issuedAt < now - ctx.settings.login.maxAgeMs) {
    throw new DomainError("LOGIN_STALE", `the ${what}'s issuedAt is too old; sign a fresh one`);
  }
}

export async function createSession(ctx: RelayContext, body: SessionRequest) {
  const { login, hardware, signature } = body;
  const digest = hashWorkerLogin(ctx.domain, workerLoginMessage(login));
  const signer = await recoverSigner(digest, signature, ctx.signatureBackend);
  if (signer !== login.operator) {
    throw new DomainError("BAD_SIGNATURE", "the login is not signed by its operator");
  }
  checkIssuedAt(ctx, login.issuedAt, "login");
  const jobTypes = [...new Set(login.jobTypes)];
  if (leasableJobTypes(ctx.settings.jobMinTier, { jobTypes, tier: login.tier }).length === 0) {
    throw new DomainError(
      "TIER_TOO_LOW",
      `tier ${login.tier} may lease none of the declared job types (see JOB_MIN_TIER in GET /v1/info)`,
    );
  }
  const used = await ctx.prisma.loginNonce.findUnique({
    where: { operator_nonce: { operator: login.operator, nonce: login.nonce } },
    select: { usedAt: true },
  });
  if (used) throw replayed();
  // Counted only for a genuine, fresh login: forged or replayed ones spend nobody's allowance,
  // and a login the transaction still refuses (its nonce used meanwhile, a fault) gives its
  // count back.
  const limit = {
    max: ctx.settings.signInLimit.perOperator,
    windowMs: ctx.settings.signInLimit.windowMs,
  };
  const now = ctx.now();
  const token = randomBytes(32).toString("base64url");
  const expiresAt = now + ctx.settings.login.sessionTtlMs;
  const session = await withProvenIdentityCount(ctx, "signins", signer, limit, () =>
    ctx.prisma.$transaction(async (tx) => {
      const inserted = await tx.$executeRaw`
        INSERT INTO "LoginNonce" ("operator", "nonce", "issuedAt", "usedAt")
        VALUES (${login.operator}, ${login.nonce}, ${BigInt(login.issuedAt)}, ${BigInt(now)})
        ON CONFLICT DO NOTHING`;
      if (inserted !== 1) throw replayed();
      return tx.workerSession.create({
        data: {
          id: randomUUID(),
          tokenHash: tokenHash(token),
          operator: login.operator,
          workerName: login.workerId,
          capacity: login.capacity,
          jobTypes,
          tier: login.tier,
          hardware,
          issuedAt: BigInt(login.issuedAt),
          expiresAt: BigInt(expiresAt),
          createdAt: BigInt(now),
        },
      });
    }),
  );
  sweepUsedNonces(ctx, now);
  return { token, expiresAt, sessionId: session.id };
}

const replayed = () =>
  new DomainError(
    "AUTHORIZATION_REPLAYED",
    "this login's nonce was already used; sign a new login with a fresh nonce",
  );

/**
 * Removes nonces whose login is past the window (a replay of it is refused as stale), and
 * sessions past their expiry and the grace after it (heldLeaseGraceMs), which nothing accepts
 * any more: a sign-in adds a row, and a fleet signs in again every half lifetime.
 */
function sweepUsedNonces(ctx: RelayContext, now: number): void {
  const last = lastSweep.get(ctx) ?? 0;
  if (now - last < NONCE_SWEEP_EVERY_MS) return;
  lastSweep.set(ctx, now);
  const before = BigInt(now - ctx.settings.login.maxAgeMs - FUTURE_SKEW_MS);
  void ctx.prisma.loginNonce.deleteMany({ where: { issuedAt: { lt: before } } }).catch(() => {});
  const over = BigInt(now - heldLeaseGraceMs(ctx));
  void ctx.prisma.workerSession.deleteMany({ where: { expiresAt: { lt: over } } }).catch(() => {});
}

/** How long after its expiry a session may still finish the leases it holds: one session TTL. */
export const heldLeaseGraceMs = (ctx: RelayContext): number => ctx.settings.login.sessionTtlMs;

/** Whether `session` has expired (it may then only finish the leases it holds). */
export const sessionExpired = (ctx: RelayContext, session: WorkerSession): boolean =>
  Number(session.expiresAt) <= ctx.now();

export class SessionCache {
  /**
   * By token: a cached session costs no digest (a token is a bearer secret either way, and only
   * its digest goes to Postgres).
   */
  private readonly cache = new Map<string, { session: WorkerSession; at: number }>();
  constructor(private readonly ttlMs = 60_000) {}

  /**
   * The session of a bearer token. An expired session is refused (401 SESSION_EXPIRED) unless
   * `heldLeases`: a call on a lease the session already holds (heartbeat, result, fail, release)
   * is still served for one more session lifetime after expiry, so a job in flight when its
   * session expires is not lost. Such a call can only touch the session's own leases; an expired
   * session never takes a new one.
   */
  async authenticate(
    ctx: RelayContext,
    authorization: string | undefined,
    { heldLeases = false }: { heldLeases?: boolean } = {},
  ): Promise<WorkerSession> {
    const m = /^Bearer ([A-Za-z0-9_-]{20,200})$/.exec(authorization ?? "");
    if (!m) throw new DomainError("UNAUTHORIZED", "send Authorization: Bearer <session token>");
    const token = m[1]!;
    const now = ctx.now();
    let entry = this.cache.get(token);
    if (!entry || now - entry.at > this.ttlMs) {
      const session = await ctx.prisma.workerSession.findUnique({
        where: { tokenHash: tokenHash(token) },
      });
      if (!session) {
        this.cache.delete(token);
        throw new DomainError("UNAUTHORIZED", "unknown session token");
      }
      entry = { session, at: now };
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(token, entry);
    }
    const expiresAt = Number(entry.session.expiresAt);
    const until = heldLeases ? expiresAt + heldLeaseGraceMs(ctx) : expiresAt;
    if (until <= now) {
      throw new DomainError("SESSION_EXPIRED", "the session expired; sign in again");
    }
    return entry.session;
  }
}
