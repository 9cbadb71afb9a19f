// Every sign-in adds a session row, and a fleet signs in again every half session lifetime: a
// relay removes the sessions nothing accepts any more (past their expiry and the grace after it
// for finishing held leases), with the nonces of logins past their window.
import { newWorkerLogin, signWorkerLogin } from "@prover-boost/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { account, allJobTypes, domain } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";

const TTL = 60_000;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ aggregator: false, env: { SESSION_TTL_MS: String(TTL) } });
});
afterAll(async () => stack?.close());

async function signInAt(workerId: string, at: number) {
  const operator = account(0x5e55);
  const login = newWorkerLogin({
    operator: operator.address,
    workerId,
    capacity: 1,
    jobTypes: allJobTypes,
    issuedAt: at,
  });
  const signature = await signWorkerLogin(operator, domain, login);
  return stack.client.createSession(login, signature);
}

it("removes sessions past their expiry and its grace, and keeps the others", async () => {
  const old = await signInAt("old", Date.now());
  const rows = () => stack.db.prisma.workerSession.findMany({ select: { id: true } });
  expect((await rows()).map((r) => r.id)).toContain(old.sessionId);
  // Later by the session's lifetime and its grace, and the sweep's own period: the old session
  // can neither lease nor finish anything, and the next sign-in's sweep removes it.
  const later = Date.now() + 2 * TTL + 61_000;
  stack.relay.ctx.now = () => Date.now() + 2 * TTL + 61_000;
  const fresh = await signInAt("fresh", later);
  await eventually(async () => !(await rows()).some((r) => r.id === old.sessionId));
  expect((await rows()).map((r) => r.id)).toEqual([fresh.sessionId]);
});
