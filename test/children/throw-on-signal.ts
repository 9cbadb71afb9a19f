// Loaded with `node --import` ahead of a service's own entry point: on SIGUSR2 it throws from an
// event callback, an error nobody catches, so a test can watch how the real entry point handles an
// uncaught exception.
process.on("SIGUSR2", () => {
  throw new Error("injected failure");
});
