// The floor bench:tree compares against: the same proof tree proven by BullMQ's own in-process
// Workers on the same Redis, with the same durations and as many concurrent jobs as the bench
// has workers, and nothing else: no HTTP, no leases, no auction, no Postgres. Whatever our
// makespan and CPU per job spend above this is the cost of remote leasing and its bookkeeping.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { type JobType, nodePriority, type PlannedNode, planTree } from "@prover-boost/core";
import { deleteKeysWithPrefix } from "@prover-boost/queue";
import { type FlowJob, FlowProducer, Worker } from "bullmq";
import { Redis } from "ioredis";

export interface FloorRun {
  /**
   * From the whole tree being in Redis (FlowProducer.add answered) to the root's completion: as
   * bench:tree's own makespan, which starts when the block moves to proving, after its fan-out.
   */
  makespanMs: number;
  /** The FlowProducer's add of the whole tree (one MULTI), before makespanMs starts. */
  addMs: number;
  /** CPU of this process (BullMQ's workers and producer) per job, ms. */
  cpuMsPerJob: number;
  jobs: number;
}

export async function bullmqFloor(
  redisUrl: string,
  txCount: number,
  concurrency: number,
  durations: Record<JobType, number>,
): Promise<FloorRun> {
  const prefix = `bench-floor-${randomBytes(4).toString("hex")}`;
  const queueName = "tree";
  const plan = planTree(txCount);
  const byKey = new Map(plan.nodes.map((n) => [n.key, n]));
  const build = (n: PlannedNode): FlowJob => ({
    name: n.type,
    queueName,
    data: { type: n.type },
    // As the relay's tree: nearer the root first.
    opts: { jobId: n.key.replace(/:/g, "-"), priority: nodePriority(n) },
    ...(n.children.length > 0 ? { children: n.children.map((k) => build(byKey.get(k)!)) } : {}),
  });
  const connection = { url: redisUrl, maxRetriesPerRequest: null };
  const rootId = plan.root.replace(/:/g, "-");
  let done: () => void = () => {};
  const rootDone = new Promise<void>((r) => {
    done = r;
  });
  const worker = new Worker<{ type: JobType }>(
    queueName,
    async (job) => {
      await new Promise((r) => setTimeout(r, durations[job.data.type]));
      return "0x";
    },
    { connection, prefix, concurrency, autorun: false },
  );
  worker.on("completed", (job) => {
    if (job.id === rootId) done();
  });
  worker.on("error", () => {});
  const flow = new FlowProducer({ connection, prefix });
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    void worker.run();
    await flow.add(build(byKey.get(plan.root)!));
    const added = performance.now();
    await rootDone;
    const makespanMs = performance.now() - added;
    const cpu = process.cpuUsage(cpu0);
    return {
      makespanMs,
      addMs: added - t0,
      cpuMsPerJob: (cpu.user + cpu.system) / 1000 / plan.nodes.length,
      jobs: plan.nodes.length,
    };
  } finally {
    await worker.close().catch(() => {});
    await flow.close().catch(() => {});
    const redis = new Redis(redisUrl);
    await deleteKeysWithPrefix(redis, prefix).catch(() => {});
    redis.disconnect();
  }
}
