// Waiting for a child process to exit, with a deadline: a test about shutdown must fail, not hang,
// when the process under test never exits.

/** Resolves with `exited`, or rejects when it has not settled after a generous `waitMs`. */
export async function exitWithin<T>(exited: Promise<T>, what: string, waitMs = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not exit within ${waitMs} ms`)), waitMs);
  });
  try {
    return await Promise.race([exited, hung]);
  } finally {
    clearTimeout(timer);
  }
}
