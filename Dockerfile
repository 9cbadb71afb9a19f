# syntax=docker/dockerfile:1
# One image for the relay, the aggregator and the worker agent; CMD picks the app (see
# docker-compose.yml). Services run their compiled entry, built in the build stage:
#   node apps/<app>/dist/<entry>.js
# node is started by tini (PID 1), so node itself receives SIGTERM and shuts down within
# SHUTDOWN_GRACE_MS; never put npm in front of it (npm does not forward signals).

# Both stages run Node 26, the Active LTS line (Node 24 is in maintenance); move both FROM lines
# to the next even major when it becomes Active LTS (each October).

# --- build: every dependency, the Prisma client, then dist/ of every package and app -------
FROM node:26-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages ./packages
COPY apps ./apps
COPY test/package.json ./test/package.json
COPY prisma ./prisma
COPY prisma.config.ts tsconfig.base.json tsconfig.json turbo.json ./
COPY scripts ./scripts
COPY bin ./bin
# postinstall generates the Prisma client (packages/db/src/generated). The image needs no type
# declarations: BUILD_DTS=0 builds the JavaScript alone.
# Then what the runtime stage copies is cut to what the services load:
# - npm prune --omit=dev: the build and test tools, and the local-L1 tools (anvil, solc: development
#   dependencies of packages/escrow; the services only read the contract's ABI).
# - the Prisma CLI and TypeScript: npm keeps them as optional peers of @prisma/client, but the
#   services run the generated client and apply migrations with their own migrator (packages/db),
#   never the CLI, and TypeScript is only ever a type-level peer.
# - bb.js's macOS native binaries (a Linux image runs the Linux ones).
# Measured on what the runtime stage copies (node_modules plus the app, not the image layers):
# 874 MB unpruned; 627 MB with `npm prune --omit=dev` alone, as this stage used to prune; 398 MB
# with all of the above (387 MB of it node_modules). docs/operations.md, "Sizing".
RUN npm ci --no-audit --no-fund \
 && node scripts/prisma-generate.mjs \
 && BUILD_DTS=0 npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/prisma node_modules/@prisma/config node_modules/@prisma/engines \
      node_modules/@prisma/engines-version node_modules/@prisma/fetch-engine \
      node_modules/@prisma/get-platform node_modules/effect node_modules/typescript \
      node_modules/@aztec/bb.js/build/*-macos

# --- runtime: production dependencies only, non-root, tini as PID 1 --------------------------
FROM node:26-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
COPY --from=build --chown=root:root /app /app
# The app's files stay owned by root (read-only to the service); only the data dir is writable.
RUN mkdir -p /app/.prover-boost && chown node:node /app/.prover-boost
USER node
EXPOSE 8080
# The relay's readiness (Postgres, Redis, the L1 index in chain mode). The aggregator and the
# worker serve only metrics: docker-compose.yml gives them their own check on METRICS_PORT.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "apps/relay/dist/server.js"]
