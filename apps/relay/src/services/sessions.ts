// Worker sign-in: an operator-signed WorkerLogin buys a bearer token. Only the token's sha256 is
// stored. Every job call authenticates, so sessions are cached in memory; a session never changes
// after sign-in (its expiry is checked on every call), so the cache only bounds memory and staleness.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { type workerLogin, workerLoginMessage } from "@prover-boost/contract";
import { DomainError, hashWorkerLogin, recoverSigner } from "@prover-boost/core";
import type { WorkerSession } from "@prover-boost/db";
import type { z } from "zod";
import type { RelayContext } from "../context.ts";

export type LoginRequest = z.output<typeof workerLogin>;

const FUTURE_SKEW_MS = 30_000;

const tokenHash = (token: string) => createHash("sha256").update(token).digest("hex");

export async function createSession(ctx: RelayContext, login: LoginRequest, signature: string) {
  const digest = hashWorkerLogin(ctx.domain, workerLoginMessage(login));
  const signer = await recoverSigner(digest, signature, ctx.signatureBackend);
  if (signer !== login.operator) {
    throw new DomainError("BAD_SIGNATURE", "the login is not signed by its operator");
  }
  const now = ctx.now();
  if (login.issuedAt < now - ctx.settings.login.maxAgeMs || login.issuedAt > now + FUTURE_SKEW_MS) {
    throw new DomainError(
      "LOGIN_STALE",
      "issuedAt is too old or in the future; sign a fresh login",
    );
  }
  const token = randomBytes(32).toString("base64url");
  const expiresAt = now + ctx.settings.login.sessionTtlMs;
  const session = await ctx.prisma.workerSession.create({
    data: {
      id: randomUUID(),
      tokenHash: tokenHash(token),
      operator: login.operator,
      workerName: login.workerId,
      capacity: login.capacity,
      jobTypes: [...new Set(login.jobTypes)],
      hardware: login.hardware,
      issuedAt: BigInt(login.issuedAt),
      expiresAt: BigInt(expiresAt),
      createdAt: BigInt(now),
    },
  });
  return { token, expiresAt, sessionId: session.id };
}

export class SessionCache {
  private readonly cache = new Map<string, { session: WorkerSession; at: number }>();
  constructor(private readonly ttlMs = 60_000) {}

  async authenticate(ctx: RelayContext, authorization: string | undefined): Promise<WorkerSession> {
    const m = /^Bearer ([A-Za-z0-9_-]{20,200})$/.exec(authorization ?? "");
    if (!m) throw new DomainError("UNAUTHORIZED", "send Authorization: Bearer <session token>");
    const hash = tokenHash(m[1]!);
    const now = ctx.now();
    let entry = this.cache.get(hash);
    if (!entry || now - entry.at > this.ttlMs) {
      const session = await ctx.prisma.workerSession.findUnique({ where: { tokenHash: hash } });
      if (!session) {
        this.cache.delete(hash);
        throw new DomainError("UNAUTHORIZED", "unknown session token");
      }
      entry = { session, at: now };
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(hash, entry);
    }
    if (Number(entry.session.expiresAt) <= now) {
      throw new DomainError("SESSION_EXPIRED", "the session expired; sign in again");
    }
    return entry.session;
  }
}
