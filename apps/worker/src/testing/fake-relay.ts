// An in-memory stand-in for the relay's worker endpoints, served through a `fetch` function, for
// the pool's unit tests. It validates requests and its own answers with the contract's schemas,
// checks login signatures and sim proofs like the real relay and lets a test inject faults (relay
// down, error answers, lost leases). Not a relay: the end-to-end tests run the real one.
import {
  type ErrorCode,
  endSessionBody,
  endSessionResponse,
  errorBodySchema,
  errorStatus,
  failBody,
  failResponse,
  heartbeatResponse,
  leaseBody,
  leaseResponse,
  relayInfo,
  resultBody,
  resultResponse,
  sessionBody,
  sessionResponse,
  workerLoginMessage,
} from "@prover-boost/contract";
import { hashWorkerLogin, recoverSigner, verifySimProof } from "@prover-boost/core";
import type { LeasedJob, RelayInfo } from "@prover-boost/sdk";
import type { z } from "zod";

type Job = Omit<LeasedJob, "leaseExpiresAt">;

export interface Fault {
  /** Matched against "METHOD /path". */
  route: RegExp;
  status: number;
  code: ErrorCode;
  /** How many requests it hits; default 1. */
  times?: number;
  /**
   * On a result: the relay completed the job before failing to answer (its own reply from Redis
   * was lost). The lease has ended, so heartbeats answer 409, but the result sent again is
   * accepted, as the real relay accepts a result the job was already completed with.
   */
  completes?: boolean;
  /** Sent as the answer's Retry-After (seconds). */
  retryAfterS?: number;
}

interface Session {
  id: string;
  login: z.output<typeof sessionBody>["login"];
  hardware: z.output<typeof sessionBody>["hardware"];
  expired: boolean;
  signedOut?: boolean;
}

/** An answer, checked against the contract's schema for it (a fake that drifts fails loudly). */
const json = (status: number, schema?: z.ZodType, body?: unknown) =>
  new Response(body === undefined ? null : JSON.stringify(schema ? schema.parse(body) : body), {
    status,
    headers: { "content-type": "application/json" },
  });
const error = (status: number, code: string, message = code) =>
  json(status, errorBodySchema, { error: { code, message, requestId: "fake" } });
const refuse = (code: ErrorCode, message: string = code) => error(errorStatus[code], code, message);

/** The request body parsed by the contract's schema, or the relay's 400 answer. */
function parsed<T extends z.ZodType>(
  schema: T,
  body: unknown,
): { ok: true; value: z.output<T> } | { ok: false; answer: Response } {
  const r = schema.safeParse(body);
  return r.success
    ? { ok: true, value: r.data }
    : { ok: false, answer: refuse("VALIDATION_FAILED", r.error.message) };
}

export class FakeRelay {
  readonly info: RelayInfo = {
    domain: {
      name: "Aztec Rollup",
      version: "1",
      chainId: 31337,
      verifyingContract: "0x00000000000000000000000000000000000000B0",
    },
    slotDurationMs: 12_000,
    genesisTimeMs: 0,
    pricing: "first",
    leaseMs: 300,
    signatureBackend: "js",
    scheduling: "priority",
    maxRetryableFailsPerWorker: 3,
    proofSystem: "sim",
    collateral: { mode: "ledger" },
  };
  down = false;
  private readonly usedNonces = new Set<string>();
  readonly queue: Job[] = [];
  readonly sessions = new Map<string, Session>();
  readonly leases = new Map<string, { token: string; job: Job }>();
  readonly accepted = new Map<string, string>();
  readonly fails: { id: string; reason: string; retryable: boolean; shutdown: boolean }[] = [];
  /**
   * Lease answers still to be sent in a shape this agent cannot read: the job leased (its lease
   * held, as the relay holds it) but sent with a proof system this SDK does not know, as a relay
   * of a newer version might.
   */
  unreadableLeases = 0;
  /** The same for the next jobs leased with results' answers (`next`). */
  unreadableNext = 0;
  readonly heartbeats: string[] = [];
  /** For each heartbeat, how long its lease had left when it arrived (ms; negative: past it). */
  readonly heartbeatLeaseLeft: number[] = [];
  readonly faults: Fault[] = [];
  /** Jobs completed by a result whose answer failed (Fault.completes). */
  private readonly completedUnanswered = new Set<string>();
  /** Heartbeats answered 409 because a result had completed their job (Fault.completes). */
  heartbeatsAfterCompletion = 0;
  /**
   * Heartbeats still to be read and never answered (a relay stopped behind an open connection):
   * each holds its request until the caller gives up on it. They do not keep the lease.
   */
  hangHeartbeats = 0;
  /** Jobs whose next heartbeat answers 409 (the lease went elsewhere). */
  readonly stealOnHeartbeat = new Set<string>();
  /**
   * When set, a lease answer grants only this many ms (as if it spent the rest of the lease on
   * its way) and a lease past its expiry is lost: its heartbeats and result answer 409.
   */
  grantMs: number | undefined;
  private readonly expiries = new Map<string, number>();
  maxConcurrentLeases = 0;
  requests = 0;
  /** When set, result requests are held (read, not answered) until it resolves. */
  holdResults: Promise<void> | undefined;
  /** Result requests read so far (held or not). */
  resultsRead = 0;
  /** Lease requests (POST /v1/jobs/lease) answered or refused so far. */
  leaseRequests = 0;
  /** When set, a result asking for the next job gets none (a relay shedding new leases). */
  refuseNext = false;
  /** Jobs leased with a result's answer (`next`). */
  leasedWithResult = 0;
  /** Sign-outs so far, with the leases each gave back. */
  readonly signOuts: { sessionId: string; kept: string[]; released: number }[] = [];
  /**
   * Lease answers still to be lost to the agent's stop: the job is leased (the relay's answer
   * handed to the socket) but the answer arrives only as the request is cut short, and is lost.
   */
  answersLostToStop = 0;
  /** How far the relay's clock is ahead of the worker's: added to the times it answers with. */
  clockAheadMs = 0;

  constructor(readonly operator: `0x${string}`) {}

  add(...jobs: Job[]): void {
    this.queue.push(...jobs);
  }

  readonly fetch: typeof fetch = async (input, init) => {
    this.requests++;
    await new Promise((r) => setImmediate(r)); // a network round trip yields to the event loop
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    const method = init?.method ?? "GET";
    const route = `${method} ${url.pathname}`;
    if (this.down) throw new TypeError("fetch failed (fake relay is down)");
    const fault = this.faults.find((f) => f.route.test(route) && (f.times ?? 1) > 0);
    if (fault) {
      fault.times = (fault.times ?? 1) - 1;
      // As on the real relay, a refused result ends the lease (422 also re-queues the job).
      const jobId = /^POST \/v1\/jobs\/([^/]+)\/result$/.exec(route)?.[1];
      const lease = jobId ? this.leases.get(decodeURIComponent(jobId)) : undefined;
      if (lease && fault.completes) this.completedUnanswered.add(lease.job.id);
      if (lease && (fault.status === 409 || fault.status === 422)) {
        this.leases.delete(lease.job.id);
        if (fault.status === 422) this.queue.push(lease.job);
      }
      const answer = error(fault.status, fault.code);
      if (fault.retryAfterS !== undefined) {
        answer.headers.set("retry-after", String(fault.retryAfterS));
      }
      return answer;
    }
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    const auth = new Headers(init?.headers).get("authorization")?.replace(/^Bearer /, "");
    if (route === "GET /v1/info") return json(200, relayInfo, this.info);
    if (route === "POST /v1/workers/sessions") return this.signIn(body);
    const session = auth ? this.sessions.get(auth) : undefined;
    if (!session || !auth) return refuse("UNAUTHORIZED");
    if (route === "DELETE /v1/workers/sessions/current") {
      const req = parsed(endSessionBody, body);
      return req.ok ? this.signOut(auth, session, req.value?.keep ?? []) : req.answer;
    }
    if (session.expired) return refuse("SESSION_EXPIRED");
    if (route === "POST /v1/jobs/lease") {
      if (session.signedOut) return refuse("SESSION_EXPIRED");
      const req = parsed(leaseBody, body);
      return req.ok ? this.lease(auth, req.value.waitMs, init?.signal) : req.answer;
    }
    const m = /^POST \/v1\/jobs\/([^/]+)\/(heartbeat|result|fail)$/.exec(route);
    if (!m) return refuse("NOT_FOUND");
    const id = decodeURIComponent(m[1]!);
    const lease = this.leases.get(id);
    if (!lease || lease.token !== auth) return refuse("LEASE_LOST");
    if (this.grantMs !== undefined && Date.now() > (this.expiries.get(id) ?? 0)) {
      this.leases.delete(id);
      this.queue.push(lease.job);
      return refuse("LEASE_LOST");
    }
    if (m[2] === "heartbeat" && this.hangHeartbeats > 0) {
      this.hangHeartbeats--;
      return new Promise<Response>((_, reject) => {
        const signal = init?.signal;
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    if (m[2] === "heartbeat") {
      this.heartbeats.push(id);
      this.heartbeatLeaseLeft.push((this.expiries.get(id) ?? 0) - Date.now());
      if (this.completedUnanswered.has(id)) {
        this.heartbeatsAfterCompletion++;
        return refuse("LEASE_LOST");
      }
      if (this.stealOnHeartbeat.delete(id)) {
        this.leases.delete(id);
        return refuse("LEASE_LOST");
      }
      const leaseExpiresAt = Date.now() + this.info.leaseMs;
      this.expiries.set(id, leaseExpiresAt);
      return json(200, heartbeatResponse, { leaseExpiresAt: leaseExpiresAt + this.clockAheadMs });
    }
    if (m[2] === "fail") {
      const req = parsed(failBody, body);
      if (!req.ok) return req.answer;
      const { reason, retryable, shutdown } = req.value;
      this.leases.delete(id);
      this.fails.push({ id, reason, retryable, shutdown });
      if (retryable) this.queue.push(lease.job);
      return json(
        200,
        failResponse,
        retryable ? { status: "requeued", retriesLeft: 2 } : { status: "failed" },
      );
    }
    this.resultsRead++;
    if (this.holdResults) await this.holdResults;
    const req = parsed(resultBody, body);
    if (!req.ok) return req.answer;
    this.leases.delete(id);
    this.completedUnanswered.delete(id);
    const { job } = lease;
    const ok =
      req.value.publicInputs.length === 0 &&
      verifySimProof({ ...job, children: job.children.map((c) => c.output) }, req.value.proof);
    if (!ok) {
      this.queue.push(job);
      return refuse("INVALID_PROOF");
    }
    this.accepted.set(id, req.value.proof);
    if (!req.value.next) return json(200, resultResponse, { status: "accepted" });
    // As the relay: the next job as a lease with no wait would give it, else null.
    if (this.refuseNext) return json(200, resultResponse, { status: "accepted", next: null });
    const next = this.take(auth);
    if (next && next !== "full") this.leasedWithResult++;
    if (next && next !== "full" && this.unreadableNext > 0) {
      this.unreadableNext--;
      return json(200, undefined, { status: "accepted", next: { ...next, proofSystem: "stark" } });
    }
    return json(200, resultResponse, { status: "accepted", next: next === "full" ? null : next });
  };

  private async signIn(body: unknown): Promise<Response> {
    const req = parsed(sessionBody, body);
    if (!req.ok) return req.answer;
    const { login, hardware, signature } = req.value;
    const digest = hashWorkerLogin(this.info.domain, workerLoginMessage(login));
    const signer = await recoverSigner(digest, signature);
    if (signer !== this.operator || login.operator !== this.operator) {
      return refuse("BAD_SIGNATURE");
    }
    // As the relay: one session per signed login.
    if (this.usedNonces.has(login.nonce)) return refuse("AUTHORIZATION_REPLAYED");
    this.usedNonces.add(login.nonce);
    const token = `token-${this.sessions.size}-${Math.random().toString(36).slice(2)}`;
    const id = `session-${this.sessions.size}`;
    this.sessions.set(token, { id, login, hardware, expired: false });
    return json(201, sessionResponse, {
      token,
      expiresAt: Date.now() + 3_600_000,
      sessionId: id,
    });
  }

  private async lease(token: string, waitMs: number, signal?: AbortSignal | null) {
    this.leaseRequests++;
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const job = this.take(token);
      if (job === "full") return refuse("CAPACITY_EXCEEDED");
      if (job && this.unreadableLeases > 0) {
        this.unreadableLeases--;
        return json(200, undefined, { job: { ...job, proofSystem: "stark" } });
      }
      if (job && this.answersLostToStop > 0 && signal) {
        this.answersLostToStop--;
        const cut = signal;
        return new Promise<Response>((_, reject) => {
          if (cut.aborted) reject(cut.reason);
          cut.addEventListener("abort", () => reject(cut.reason), { once: true });
        });
      }
      if (job) return json(200, leaseResponse, { job });
      if (Date.now() >= deadline) return json(204);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Leases the first queued job the session may take; "full" at its capacity. */
  private take(token: string): LeasedJob | "full" | null {
    const session = this.sessions.get(token)!;
    const held = [...this.leases.values()].filter((l) => l.token === token).length;
    if (held >= session.login.capacity) return "full";
    const i = this.queue.findIndex((j) => session.login.jobTypes.includes(j.type));
    if (i < 0) return null;
    const job = this.queue.splice(i, 1)[0]!;
    this.leases.set(job.id, { token, job });
    this.maxConcurrentLeases = Math.max(this.maxConcurrentLeases, this.leases.size);
    const leaseExpiresAt = Date.now() + (this.grantMs ?? this.info.leaseMs);
    this.expiries.set(job.id, leaseExpiresAt);
    return { ...job, leaseExpiresAt: leaseExpiresAt + this.clockAheadMs };
  }

  /** As the relay's sign-out: the session ends, and the leases it still holds go back. */
  private signOut(token: string, session: Session, keep: string[]): Response {
    // As the relay: no new lease, while the calls on the leases it holds are still served.
    session.signedOut = true;
    let released = 0;
    for (const [id, lease] of this.leases) {
      if (lease.token !== token || keep.includes(id)) continue;
      this.leases.delete(id);
      this.queue.push(lease.job);
      released++;
    }
    this.signOuts.push({ sessionId: session.id, kept: keep, released });
    return json(200, endSessionResponse, { sessionId: session.id, released });
  }

  /** Marks every session expired: job calls answer 401 SESSION_EXPIRED. */
  expireSessions(): void {
    for (const s of this.sessions.values()) s.expired = true;
  }
}

/** n base jobs of block `block`, each with its own tx hash. */
export function baseJobs(block: number, n: number): Job[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${block}:${i}`,
    type: "base" as const,
    blockNumber: block,
    level: 2,
    index: i,
    inputs: [`0x${(i + 1).toString(16).padStart(64, "0")}` as const],
    proofSystem: "sim" as const,
    children: [],
  }));
}
