// How far behind the relay is, and what it owes to requests that came while it was behind.
//
// A relay that falls behind (its event loop busy, its CPU saturated) must not punish the workers
// it failed to serve. Three pieces, wired in relay.ts:
// - LoopLag samples the event loop's own delay (a timer's lateness every SAMPLE_MS) and keeps
//   the last second of samples. When their mean (a sustained delay, not one long GC pause or
//   one large request) is above OVERLOAD_LAG_MS, the relay sheds load on new leases (503
//   UNAVAILABLE with Retry-After: half of them just over the limit, up to 95% at twice it, so
//   it keeps handing out some work); heartbeats, results and fails are never shed.
// - Arrivals stamps lease-holder requests (heartbeat, result, fail) the moment the relay reads
//   them, before authentication or any await, with the loop's recent delay: a heartbeat counts
//   from that arrival (less the delay that kept the relay from reading it sooner), not from
//   when the relay got round to it (broker.heartbeat revives a lock that ran out meanwhile).
// - AcceptLag measures how long a new connection waits to be accepted. A busy Node process
//   accepts one pending connection per turn of its event loop, so under load a worker's new
//   connection (its result sent while its lease answer's connection is still busy, say) can wait
//   seconds in the kernel's accept queue while every turn of the loop stays short: the loop's
//   own delay does not show it. The relay connects to its own listener every PROBE_MS and times
//   the accept. That wait counts as the relay being behind for the lapse rule, is added to the
//   arrival of the first request on each new connection, and puts lapse sweeps off while a probe
//   waits. It does not shed leases by itself (behindMs is the loop's alone).
// - sweepGate lets the lapse sweeper (fabric.ts) run only when the relay is on time: a sweep
//   whose own timer fired late, or that finds connections waiting to be accepted, is put off (the
//   sockets may hold unread heartbeats), and a sweep first waits until every stamped request that
//   arrived before it has been answered. A sweep is never put off for longer than LEASE_MS in a
//   row (twice that for connections waiting), so withholding is still found under load.
import { EventEmitter } from "node:events";
import net from "node:net";
import { performance } from "node:perf_hooks";

const SAMPLE_MS = 20;
const WINDOW_SAMPLES = 50; // one second of samples

export class LoopLag {
  private readonly samples = new Float64Array(WINDOW_SAMPLES);
  private next = 0;
  private recent = 0;
  private mean = 0;
  private lastAt = performance.now();
  private timer: NodeJS.Timeout | null = null;
  private forced: number | null = null;
  private accepts: { recentMs(): number } | null = null;

  /** Counts how long new connections wait to be accepted (AcceptLag) as being behind too. */
  watchAccepts(accepts: { recentMs(): number }): void {
    this.accepts = accepts;
  }

  /** How long new connections wait to be accepted (ms): the last second's worst, or 0. */
  acceptMs(): number {
    if (this.forced !== null) return this.forced;
    return this.accepts?.recentMs() ?? 0;
  }

  start(): void {
    if (this.timer) return;
    this.lastAt = performance.now();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private sample(): void {
    const now = performance.now();
    const late = Math.max(0, now - this.lastAt - SAMPLE_MS);
    this.lastAt = now;
    this.samples[this.next] = late;
    this.next = (this.next + 1) % WINDOW_SAMPLES;
    let max = 0;
    let sum = 0;
    for (const s of this.samples) {
      sum += s;
      if (s > max) max = s;
    }
    this.recent = max;
    this.mean = sum / WINDOW_SAMPLES;
  }

  /**
   * The loop's mean delay over the last second (ms), a delay still under way included: how far
   * behind the relay keeps being. A forced value wins (tests, drills).
   */
  behindMs(): number {
    if (this.forced !== null) return this.forced;
    const ongoing = Math.max(0, performance.now() - this.lastAt - SAMPLE_MS);
    return Math.max(this.mean, ongoing);
  }

  /**
   * The loop's worst delay over the last second (ms), counting a delay still under way (the
   * sampler not having run for longer than its period), or the accept wait if longer. A forced
   * value wins (tests, drills).
   */
  recentMs(): number {
    if (this.forced !== null) return this.forced;
    return Math.max(this.loopMs(), this.acceptMs());
  }

  /** The loop's own worst delay over the last second (ms), without the accept wait. */
  loopMs(): number {
    if (this.forced !== null) return this.forced;
    const ongoing = Math.max(0, performance.now() - this.lastAt - SAMPLE_MS);
    return Math.max(this.recent, ongoing);
  }

  isForced(): boolean {
    return this.forced !== null;
  }

  /** Pretends the loop is `ms` behind (null: measure again). For tests and load drills. */
  force(ms: number | null): void {
    this.forced = ms;
  }
}

/** A stamped request: when the relay read it and how far behind the loop was then. */
export interface Arrival {
  seq: number;
  /** Date.now() when the relay read the request. */
  at: number;
  /** The loop's recent delay then: the request may have waited that long to be read. */
  lagMs: number;
}

/**
 * Lease-holder requests in flight, by arrival order. `drained()` resolves once every request
 * stamped before the call has been answered (or its connection closed). Emits "arrived"
 * (Arrival) synchronously as each is stamped.
 */
export class Arrivals extends EventEmitter {
  private seq = 0;
  private readonly pending = new Set<number>();
  private waiters: { upTo: number; resolve: () => void }[] = [];

  constructor(private readonly lag: LoopLag) {
    super();
  }

  /**
   * `newConnection`: the request is the first on its connection, which may have waited to be
   * accepted; a request on a connection already open waited only for the loop.
   */
  stamp(newConnection = false): Arrival {
    const lagMs = newConnection ? this.lag.recentMs() : this.lag.loopMs();
    const a: Arrival = { seq: ++this.seq, at: Date.now(), lagMs };
    this.pending.add(a.seq);
    if (this.listenerCount("arrived") > 0) this.emit("arrived", a);
    return a;
  }

  done(a: Arrival): void {
    if (!this.pending.delete(a.seq) || this.waiters.length === 0) return;
    const oldest = this.oldestPending();
    this.waiters = this.waiters.filter((w) => {
      if (w.upTo < oldest) w.resolve();
      return w.upTo >= oldest;
    });
  }

  private oldestPending(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const s of this.pending) if (s < min) min = s;
    return min;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Resolves when every request stamped so far has been answered. */
  drained(): Promise<void> {
    const upTo = this.seq;
    if (this.oldestPending() > upTo) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ upTo, resolve }));
  }
}

/** How long ago (ms) a stamped request may have arrived: since its stamp, plus the loop's delay. */
export function arrivedAgoMs(a: Arrival | undefined): number {
  return a ? Date.now() - a.at + a.lagMs : 0;
}

/**
 * The lapse sweeper's gate (fabric.ts): put off a sweep whose timer fired more than `lateMs`
 * late, unless sweeps were put off for `maxDeferMs` already, or while a connection has waited
 * more than `lateMs` to be accepted, unless put off for twice that; otherwise wait for stamped
 * requests in flight to be answered, then sweep.
 */
export function sweepGateOf(
  arrivals: Arrivals,
  lateMs: number,
  maxDeferMs: number,
  accepts?: { waitingMs(): number },
) {
  return async (tick: { lateMs: number; deferredMs: number }): Promise<boolean> => {
    if (tick.lateMs > lateMs && tick.deferredMs < maxDeferMs) return false;
    // Connections waiting to be accepted may hold heartbeats of every lease about to lapse; a
    // backlog of them can outlast one LEASE_MS, so sweeps wait for it up to twice as long.
    if ((accepts?.waitingMs() ?? 0) > lateMs && tick.deferredMs < 2 * maxDeferMs) return false;
    await arrivals.drained();
    return true;
  };
}

/** How often the relay times the accept of a connection to its own listener. */
const PROBE_MS = 100;
/** Accept waits kept: one second of probes. */
const ACCEPT_WINDOW_MS = 1000;

/**
 * How long a new connection waits to be accepted by this process's listener: the relay connects
 * to its own listener every PROBE_MS (one probe at a time) and times the accept. The probe's
 * connection is matched by its local port on the listener's "connection" event, which may come
 * before or after the probe's own "connect".
 */
export class AcceptLag {
  private samples: { at: number; ms: number }[] = [];
  private probe: { sentAt: number; port: number | null; socket: net.Socket } | null = null;
  /** Loopback connections accepted while the probe's port was not known yet: port -> when. */
  private early = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private server: net.Server | null = null;
  private readonly onConnection = (socket: net.Socket) => this.accepted(socket);

  /** Starts probing `server` (listening). */
  start(server: net.Server): void {
    if (this.timer) return;
    this.server = server;
    server.on("connection", this.onConnection);
    this.timer = setInterval(() => this.send(), PROBE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.server?.off("connection", this.onConnection);
    this.server = null;
    this.probe?.socket.destroy();
    this.probe = null;
    this.early.clear();
  }

  /** How long the probe under way has waited to be accepted (ms), or 0. */
  waitingMs(): number {
    return this.probe ? performance.now() - this.probe.sentAt : 0;
  }

  /** The longest accept wait of the last second (ms), a wait still under way included. */
  recentMs(): number {
    const since = performance.now() - ACCEPT_WINDOW_MS;
    let max = this.waitingMs();
    for (const s of this.samples) if (s.at >= since && s.ms > max) max = s.ms;
    return max;
  }

  private target(): { host: string; port: number } | null {
    const a = this.server?.address() ?? null;
    if (a === null || typeof a === "string") return null;
    const host = a.address === "0.0.0.0" ? "127.0.0.1" : a.address === "::" ? "::1" : a.address;
    return { host, port: a.port };
  }

  private send(): void {
    if (this.probe) return; // the one under way counts through waitingMs()
    const to = this.target();
    if (!to) return;
    const socket = net.connect(to);
    const probe = { sentAt: performance.now(), port: null as number | null, socket };
    this.probe = probe;
    // Refused, reset or closed before it was matched: no sample (the next probe tries again).
    const gone = () => {
      if (this.probe === probe) this.probe = null;
      this.early.clear();
    };
    socket.on("error", gone);
    socket.on("close", gone);
    socket.on("connect", () => {
      if (this.probe !== probe) return;
      probe.port = socket.localPort ?? null;
      const at = probe.port === null ? undefined : this.early.get(probe.port);
      this.early.clear();
      if (at !== undefined) this.done(at);
    });
  }

  private accepted(socket: net.Socket): void {
    const probe = this.probe;
    const port = socket.remotePort;
    if (!probe || port === undefined || !isLoopback(socket.remoteAddress)) return;
    const now = performance.now();
    if (probe.port === port) {
      socket.destroy();
      this.done(now);
    } else if (probe.port === null) {
      this.early.set(port, now);
      // The probe's own connection is closed from its side once matched.
    }
  }

  private done(acceptedAt: number): void {
    const probe = this.probe;
    if (!probe) return;
    this.probe = null;
    probe.socket.destroy();
    const now = performance.now();
    this.samples = this.samples.filter((s) => s.at >= now - ACCEPT_WINDOW_MS);
    this.samples.push({ at: now, ms: Math.max(0, acceptedAt - probe.sentAt) });
  }
}

function isLoopback(address: string | undefined): boolean {
  return (
    address !== undefined &&
    (address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127."))
  );
}
