// Whose delay lost a lease: the relay's or the load generator's. The simulated workers' fetch is
// wrapped to note, per job, the lease deadline the worker knew (from the lease answer and each
// heartbeat answer) and when it last sent a heartbeat or result. A lease lost although the
// worker's last request went out before the deadline it knew is the relay's doing (it read or
// handled the request too late), and so is one whose lease answer was read only after the
// deadline it carried (answered too late to be kept); one whose worker sent nothing before that
// deadline although it had time is the load generator's (its own event loop was too busy to send
// the heartbeat in time). The generator's
// event-loop delay is measured beside it (loop-delay.ts).
import { LoopDelay } from "./loop-delay.ts";

interface JobTrack {
  /** The relay refused a heartbeat or result of this lease (409): this is the lease lost. */
  refused: boolean;
  deadline: number;
  /** When the lease answer was read, and the deadline it carried. */
  answeredAt: number;
  grantedUntil: number;
  lastSentAt: number;
  deadlineAtLastSend: number;
  kind: "heartbeat" | "result" | null;
}

export interface LostLease {
  job: string;
  cause: "relay" | "load-generator";
  /** Deadline known to the worker minus when its last request went out (negative: late). */
  sentBeforeDeadlineMs: number | null;
  /** The lease's deadline as answered minus when the answer was read (negative: already lapsed). */
  answerLeftMs: number | null;
  lastRequest: "heartbeat" | "result" | null;
  reason: string;
}

/**
 * A request that returned a job (a lease, or a result that brought the next job): when it went
 * out and when its answer was read.
 */
export interface LeaseAnswer {
  job: string;
  sentAt: number;
  answeredAt: number;
  /** Leased with a result (the answer's `next`), not by a lease request. */
  withResult: boolean;
}

const jobPath = /\/v1\/jobs\/([^/]+)\/(heartbeat|result)$/;

export class LeaseAudit {
  /** Per lease: keyed by the worker's session token and the job (a job is leased again). */
  private readonly jobs = new Map<string, JobTrack>();
  private readonly leasesOfJob = new Map<string, string[]>();
  readonly lost: LostLease[] = [];
  readonly answers: LeaseAnswer[] = [];
  /** Lease requests the relay shed (503 with Retry-After). */
  shed = 0;
  private readonly loop = new LoopDelay(10);

  /** A fetch that notes lease deadlines and send times around `inner`. */
  wrap(inner: typeof fetch): typeof fetch {
    return (async (input: string | URL | Request, init?: RequestInit) => {
      const url = input instanceof Request ? input.url : String(input);
      const m = jobPath.exec(url);
      const sentAt = Date.now();
      const auth = String((init?.headers as Record<string, string> | undefined)?.authorization);
      if (m) {
        const t = this.jobs.get(`${auth}|${m[1]}`);
        if (t) {
          t.lastSentAt = sentAt;
          t.deadlineAtLastSend = t.deadline;
          t.kind = m[2] as "heartbeat" | "result";
        }
      }
      const res = await inner(input, init);
      const answeredAt = Date.now();
      if (res.status === 503 && url.endsWith("/v1/jobs/lease")) this.shed++;
      if (res.status === 409 && m) {
        const t = this.jobs.get(`${auth}|${m[1]}`);
        if (t) t.refused = true;
      }
      if (res.status === 200 && (m || url.endsWith("/v1/jobs/lease"))) {
        const body = (await res.clone().json()) as {
          job?: { id: string; leaseExpiresAt: number };
          /** A result's answer: the next job leased with it. */
          next?: { id: string; leaseExpiresAt: number } | null;
          leaseExpiresAt?: number;
        };
        const leased = body.job ?? body.next;
        if (leased) {
          this.answers.push({ job: leased.id, sentAt, answeredAt, withResult: !body.job });
          const key = `${auth}|${leased.id}`;
          this.leasesOfJob.set(leased.id, [...(this.leasesOfJob.get(leased.id) ?? []), key]);
          this.jobs.set(key, {
            refused: false,
            deadline: leased.leaseExpiresAt,
            answeredAt,
            grantedUntil: leased.leaseExpiresAt,
            lastSentAt: 0,
            deadlineAtLastSend: 0,
            kind: null,
          });
        } else if (m && typeof body.leaseExpiresAt === "number") {
          const t = this.jobs.get(`${auth}|${m[1]}`);
          if (t) t.deadline = Math.max(t.deadline, body.leaseExpiresAt);
        }
      }
      return res;
    }) as typeof fetch;
  }

  /** A worker reported a lease lost: attributes it. */
  onLost(job: string, reason: string): void {
    // The lease of this job the relay refused (the newest such), else its newest lease.
    const keys = this.leasesOfJob.get(job) ?? [];
    const tracks = keys.map((k) => this.jobs.get(k)!);
    const t = tracks.filter((x) => x.refused).at(-1) ?? tracks.at(-1);
    const inTime = t !== undefined && t.kind !== null && t.lastSentAt <= t.deadlineAtLastSend;
    // A lease whose answer was read only once it had lapsed: no worker could have kept it.
    const answeredLate = t !== undefined && t.answeredAt >= t.grantedUntil;
    this.lost.push({
      job,
      cause: inTime || answeredLate ? "relay" : "load-generator",
      sentBeforeDeadlineMs: t && t.kind !== null ? t.deadlineAtLastSend - t.lastSentAt : null,
      answerLeftMs: t ? t.grantedUntil - t.answeredAt : null,
      lastRequest: t?.kind ?? null,
      reason,
    });
  }

  /** The load generator's own event-loop delay (ms) since construction. */
  loopDelay() {
    return this.loop.read();
  }

  /** Forget the event-loop delay seen so far (start of the measured phase). */
  resetLoopDelay(): void {
    this.loop.reset();
  }

  close(): void {
    this.loop.stop();
  }
}
