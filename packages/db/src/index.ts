export { type Database, type DatabaseOptions, openDatabase, type Prisma } from "./database.ts";
export { Prisma as PrismaNamespace } from "./generated/client.ts";
export type * from "./generated/models.ts";
export { applyMigrations, defaultMigrationsDir, type SqlRunner } from "./migrate.ts";
