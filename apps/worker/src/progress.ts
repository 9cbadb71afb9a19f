// Terminal progress for the CLI when stdout is a TTY: a cli-progress multibar with a total bar
// (jobs settled of jobs leased, outcome counts and the proof rate) and one bar per worker. Log
// lines are printed above the bars.
import cliProgress, { type SingleBar } from "cli-progress";
import type { LogLevel } from "./cli-options.ts";
import type { WorkerEvent, WorkerLogger, WorkerStats } from "./types.ts";

const levelValue: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};
/** Per-job info lines would bury the bars. */
const MIN_TTY_LEVEL = levelValue.warn;
const MAX_WORKER_BARS = 16;
const RATE_WINDOW_MS = 60_000;

export interface ProgressDisplay {
  onEvent(e: WorkerEvent): void;
  logger: WorkerLogger;
  stop(): void;
}

interface WorkerRow {
  bar?: SingleBar;
  leased: number;
  settled: number;
  inFlight: number;
  status: string;
}

function formatFields(obj: object): string {
  return Object.entries(obj)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}

export function createProgress(opts: {
  workerIds: string[];
  level: LogLevel;
  stream?: NodeJS.WritableStream;
}): ProgressDisplay {
  const multibar = new cliProgress.MultiBar(
    {
      stream: opts.stream ?? process.stdout,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
      fps: 5,
      barsize: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  const provenAt: number[] = [];
  const stats: WorkerStats = { leased: 0, proven: 0, failed: 0, rejected: 0, lost: 0 };
  const total = multibar.create(
    1,
    0,
    {},
    {
      format:
        "proofs {bar} {value}/{total} | ok {proven} rejected {rejected} lost {lost} failed {failed} | {rate}/min",
    },
  );
  const width = Math.max(...opts.workerIds.map((id) => id.length));
  const rows = new Map<string, WorkerRow>();
  opts.workerIds.forEach((id, i) => {
    const row: WorkerRow = { leased: 0, settled: 0, inFlight: 0, status: "signing in" };
    if (opts.workerIds.length > 1 && i < MAX_WORKER_BARS) {
      row.bar = multibar.create(
        1,
        0,
        { name: id.padEnd(width), status: row.status },
        {
          format: "{name} {bar} {value}/{total} | {status}",
        },
      );
    }
    rows.set(id, row);
  });

  const rate = (): string => {
    const now = Date.now();
    while (provenAt.length > 0 && provenAt[0]! < now - RATE_WINDOW_MS) provenAt.shift();
    const windowMs = Math.min(RATE_WINDOW_MS, Math.max(1000, now - started));
    return ((provenAt.length * 60_000) / windowMs).toFixed(1);
  };
  const render = () => {
    const settled = stats.proven + stats.failed + stats.rejected + stats.lost;
    total.setTotal(Math.max(1, stats.leased));
    total.update(settled, { ...stats, rate: rate() });
  };
  const renderRow = (row: WorkerRow) => {
    row.bar?.setTotal(Math.max(1, row.leased));
    row.bar?.update(row.settled, { status: row.status });
  };
  render();
  const ticker = setInterval(render, 1000);
  ticker.unref();

  const settle = (worker: string, status: string) => {
    const row = rows.get(worker);
    if (!row) return;
    row.settled++;
    row.inFlight = Math.max(0, row.inFlight - 1);
    row.status = row.inFlight > 0 ? `${row.inFlight} in flight` : status;
    renderRow(row);
  };

  const log = (level: LogLevel) => (obj: object, msg?: string) => {
    const chosen = levelValue[opts.level];
    // info lines only with --log-level debug/trace; the bars already tell what they would say
    const threshold = chosen <= levelValue.debug ? chosen : Math.max(chosen, MIN_TTY_LEVEL);
    if (levelValue[level] < threshold) return;
    const time = new Date().toISOString().slice(11, 19);
    multibar.log(`${time} ${level.toUpperCase().padEnd(5)} ${msg ?? ""} ${formatFields(obj)}\n`);
  };

  return {
    logger: { info: log("info"), warn: log("warn"), error: log("error"), debug: log("debug") },
    onEvent(e) {
      if (e.type === "stopped") return;
      const row = rows.get(e.worker);
      switch (e.type) {
        case "signed_in":
          if (row && row.inFlight === 0) row.status = "idle";
          break;
        case "leased":
          stats.leased++;
          if (row) {
            row.leased++;
            row.inFlight++;
            row.status = `proving ${e.job.type} #${e.job.blockNumber} ${e.job.level}:${e.job.index}`;
          }
          break;
        case "proven":
          stats.proven++;
          provenAt.push(Date.now());
          settle(e.worker, "idle");
          break;
        case "rejected":
          stats.rejected++;
          settle(e.worker, "proof rejected");
          break;
        case "lost":
          stats.lost++;
          settle(e.worker, "lease lost");
          break;
        case "failed":
          stats.failed++;
          settle(e.worker, "handed a job back");
          break;
        case "relay_error":
          if (row) row.status = `relay error (${e.op}); retry in ${e.retryInMs} ms`;
          break;
      }
      if (row) renderRow(row);
      render();
    },
    stop() {
      clearInterval(ticker);
      render();
      multibar.stop();
    },
  };
}
