// Process faults mid-tree: the relay SIGKILLed and started again on its port; two relays behind a
// load balancer with one SIGKILLed for good; a worker that disconnects while its lease request
// waits (long poll); a worker process SIGKILLed while it proves (restarted by its operator).
import { RelayClient } from "@prover-boost/sdk";
import { signIn } from "../../support/blocks.ts";
import { startBalancer } from "../lib/balancer.ts";
import { openBlock } from "../lib/market.ts";
import type { Scenario } from "../lib/scenario.ts";
import { pollUntil, sleep } from "../lib/util.ts";
import { World } from "../lib/world.ts";
import { inWorld, loser, provingBlock, settle, treePlan, WINNER, winner } from "./common.ts";

export const relayKilled: Scenario = {
  name: "relay SIGKILL mid-tree",
  injected: "the relay SIGKILLed mid-tree, restarted on its port",
  timeoutMs: 600_000,
  run: () =>
    inWorld(World.start, async (world) => {
      await world.startWorkers(WINNER, { prefix: "w" });
      await provingBlock(world, 1);
      await world.waitProven(1, 6);
      await world.killRelay(0);
      await world.restartRelay(0);
      world.faultEnded();
      return settle(world, 1);
    }),
};

export const twoRelaysOneKilled: Scenario = {
  name: "two relays, one killed",
  injected: "one of two relays behind a balancer SIGKILLed mid-tree, not restarted",
  timeoutMs: 600_000,
  run: () =>
    inWorld(
      () => World.start({ relays: 2 }),
      async (world) => {
        const balancer = await startBalancer(world.relays.map((r) => r.url));
        try {
          await world.startWorkers(WINNER, {
            prefix: "w",
            workers: 4,
            capacity: 1,
            url: balancer.url,
          });
          // The harness talks to the relay that survives.
          world.useRelay(1);
          await provingBlock(world, 1);
          await world.waitProven(1, 6);
          await world.killRelay(0);
          world.faultEnded();
          return await settle(world, 1);
        } finally {
          await balancer.close();
        }
      },
    ),
};

export const workerDisconnect: Scenario = {
  name: "worker disconnect during a long poll",
  injected: "a worker's lease request (30 s long poll) aborted before the tree is out",
  timeoutMs: 600_000,
  run: () =>
    inWorld(World.start, async (world) => {
      await world.fund([winner, loser]);
      const abort = new AbortController();
      const fetchWithAbort: typeof fetch = (input, init) =>
        fetch(input, {
          ...init,
          signal: init?.signal ? AbortSignal.any([init.signal, abort.signal]) : abort.signal,
        });
      const poller = await signIn(
        { client: new RelayClient({ baseUrl: world.url, fetch: fetchWithAbort }) },
        winner,
        "poller-1",
      );
      // The worker waits for work before there is any, then its connection goes (a restart, a
      // proxy's idle timeout, ...). The block opens right after, while the request would still
      // be waiting had it not gone (30 s, the longest long poll).
      const poll = poller.client.lease(30_000).catch(() => null);
      await sleep(1000);
      abort.abort();
      world.faultEnded();
      await poll;
      await openBlock(world, 1, treePlan());
      // The operator's other workers start once the tree is out; the poller never comes back.
      await world.waitStage(1, ["proving"], 120_000);
      await world.startWorkers(WINNER, { prefix: "w" });
      const columns = await settle(world, 1);
      const outAfter = ((await world.block(1))?.stages.proving ?? 0) - world.faultEndedAt;
      columns.notes.push(`tree out ${(outAfter / 1000).toFixed(1)} s after the disconnect`);
      return columns;
    }),
};

export const workerKilled: Scenario = {
  name: "worker SIGKILL mid-job",
  injected: "a worker process SIGKILLed while proving, restarted by its operator",
  timeoutMs: 600_000,
  run: () =>
    inWorld(World.start, async (world) => {
      const crashy = await world.startWorkers(WINNER, { prefix: "crashy", simMs: 300 });
      await provingBlock(world, 1);
      await pollUntil(
        async () => (await world.provenJobs(1)) >= 4 && crashy.inFlight.size >= 1,
        120_000,
        5,
        "the worker never held a lease mid-tree",
      );
      await world.killWorkers(crashy);
      world.faultEnded();
      await world.startWorkers(WINNER, { prefix: "restarted" });
      return settle(world, 1);
    }),
};

export const processScenarios = [relayKilled, twoRelaysOneKilled, workerDisconnect, workerKilled];
