// The queue view: Bull Board at /admin/queues, read-only, behind ADMIN_TOKEN (off, so a 404,
// without one). A browser cannot attach a bearer header, so HTTP basic auth is accepted too (any
// user name, the token as password): a 401 asks the browser for it, which then sends it with
// every request of the page, and the token never appears in a URL or a log line. Tokens are
// compared as digests in constant time.
//
// Each block being proven has its own queues (one per kind; see packages/queue), so the board
// follows the registry of active blocks: every request to it first brings the list up to date
// (the registry's cached read, dropped whenever blocks start or stop being proven), so a new
// block's queues appear at once and a paid block's go. The board has its own BullMQ Queue objects
// on the fabric's Redis connection, independent of the handles the gateway opens and closes.
import { createHash, timingSafeEqual } from "node:crypto";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import { blockQueueName, queueOrder } from "@prover-boost/queue";
import { Queue } from "bullmq";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { RelayContext } from "./context.ts";
import { errorBody } from "./errors.ts";

export const QUEUE_BOARD_PATH = "/admin/queues";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** The token a request carries: `Bearer <token>`, or basic auth with the token as password. */
export function presentedToken(authorization: string | undefined): string | null {
  if (!authorization) return null;
  const bearer = /^Bearer (.+)$/.exec(authorization);
  if (bearer) return bearer[1]!;
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(authorization);
  if (!basic) return null;
  const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? null : decoded.slice(colon + 1);
}

/** Whether `given` is the admin token, in time independent of where they differ. */
export function isAdminToken(expected: string, given: string | null): boolean {
  return given !== null && timingSafeEqual(digest(expected), digest(given));
}

export async function registerQueueBoard(app: FastifyInstance, ctx: RelayContext): Promise<void> {
  const token = ctx.settings.adminToken;
  if (!token) return;
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(QUEUE_BOARD_PATH);
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: { uiConfig: { boardTitle: "prover-boost" } },
  });
  const shown = new Map<string, Queue>();
  const connection = ctx.fabric.redis as unknown as ConstructorParameters<
    typeof Queue
  >[1]["connection"];

  /** Shows the queues of the blocks being proven now, and only those. */
  const sync = async () => {
    const blocks = await ctx.registry.active(ctx.now());
    const want = new Set(
      blocks.flatMap((b) => queueOrder.map((kind) => blockQueueName(b.number, kind))),
    );
    for (const [name, queue] of shown) {
      if (want.has(name)) continue;
      board.removeQueue(name);
      shown.delete(name);
      void queue.close().catch(() => {});
    }
    for (const name of [...want].sort()) {
      if (shown.has(name)) continue;
      const queue = new Queue(name, { connection, prefix: ctx.fabric.options.prefix });
      queue.on("error", () => {});
      shown.set(name, queue);
      board.addQueue(new BullMQAdapter(queue, { readOnlyMode: true }));
    }
  };

  const deny = (req: FastifyRequest, reply: FastifyReply) =>
    reply
      .status(401)
      .header("www-authenticate", 'Basic realm="prover-boost admin", charset="UTF-8"')
      .send(
        errorBody(
          "UNAUTHORIZED",
          "send Authorization: Bearer <ADMIN_TOKEN>, or basic auth with it as the password",
          String(req.id),
        ),
      );

  await app.register(async (scope) => {
    scope.addHook("onRequest", async (req, reply) => {
      if (!isAdminToken(token, presentedToken(req.headers.authorization))) {
        return deny(req, reply);
      }
      // Read-only: the fabric's lease records and Postgres must not be bypassed by board actions.
      if (req.method !== "GET" && req.method !== "HEAD") {
        return reply
          .status(405)
          .header("allow", "GET, HEAD")
          .send(errorBody("METHOD_NOT_ALLOWED", "the queue view is read-only", String(req.id)));
      }
      try {
        await sync();
      } catch (err) {
        // The board still answers (with the queues shown last); the next request tries again.
        req.log.warn({ err }, "queue view: could not read the blocks being proven");
      }
    });
    await scope.register(serverAdapter.registerPlugin() as never, { prefix: QUEUE_BOARD_PATH });
  });
  app.addHook("onClose", async () => {
    await Promise.allSettled([...shown.values()].map((q) => q.close()));
    shown.clear();
  });
}
