FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages ./packages
COPY apps ./apps
COPY test/package.json ./test/package.json
COPY prisma ./prisma
COPY prisma.config.ts tsconfig.base.json tsconfig.json ./
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund && node scripts/prisma-generate.mjs
ENV NODE_ENV=production
EXPOSE 8080
CMD ["npm", "run", "relay"]
