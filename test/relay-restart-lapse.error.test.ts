// A relay that restarts finds the jobs leased before it stopped: a lease whose worker died with
// the old relay lapses on the new one and its job is offered again, even when nothing else of
// that job's kind is ready to be taken (the block's root: the only job in its queue). The lapse
// sweep runs on a block's fetchers, which a relay opened only on taking a job of that kind or on
// the block's announcement at fan-out, so after a restart a lapsed root stayed active for good,
// and the block missed its deadline.

import { rootJobTypes } from "@prover-boost/core";
import { createRelay, type Relay } from "@prover-boost/relay";
import { RelayClient } from "@prover-boost/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { account } from "./fixtures.ts";
import { eventually, type Stack, startStack } from "./harness.ts";
import { openBlock, proofOf, signIn } from "./support/blocks.ts";

const op = account(0x7a);
let stack: Stack;
let relay2: Relay | undefined;

beforeAll(async () => {
  stack = await startStack({ env: { LEASE_MS: "1000", RATE_LIMIT_PER_IP: "0" } });
  await stack.admin.deposit(op.address, 10n ** 18n);
});
afterAll(async () => {
  if (relay2) {
    await relay2.ctx.fabric.obliterate().catch(() => {});
    await relay2.close();
  }
  await stack?.close();
});

it("offers again a root whose lease lapsed across a relay restart", async () => {
  await openBlock(stack, 1, { txCount: 2, winner: op });
  const w = await signIn(stack, op, "dies", { capacity: 1 });
  let root = null;
  while (!root) {
    const job = await w.client.lease(1000);
    if (!job) continue;
    if (rootJobTypes.includes(job.type)) root = job;
    else await w.client.submitResult(job.id, proofOf(job));
  }
  // The worker dies holding the root, and the relay restarts.
  await stack.relay.close();
  relay2 = await createRelay(stack.relay.env, { db: stack.db });
  await relay2.app.listen({ port: 0, host: "127.0.0.1" });
  const address = relay2.app.server.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

  const again = await signIn(
    { ...stack, client: new RelayClient({ baseUrl: url }) },
    op,
    "takes-over",
    {
      capacity: 1,
    },
  );
  const job = await eventually(() => again.client.lease(1000), 20_000);
  expect(job.id).toBe(root.id);
  await again.client.submitResult(job.id, proofOf(job));
  await eventually(
    async () =>
      (await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 1 } })).stage === "paid" ||
      (await stack.db.prisma.block.findUniqueOrThrow({ where: { number: 1 } })).stage === "proven",
  );
}, 60_000);
