// Defaults shared by the worker pool and its command line (kept free of heavy imports).

/** How long one lease request long-polls the relay for a job. */
export const DEFAULT_WAIT_MS = 10_000;
