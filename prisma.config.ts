// Prisma CLI configuration: the Rust-free ("js") engine with a driver adapter, so every CLI
// command (generate, migrate diff, migrate deploy) runs without downloading engine binaries.
// DATABASE_URL selects Postgres; otherwise the embedded PGlite data directory (DATA_DIR).
import path from "node:path";
import { defineConfig, type PrismaConfig } from "prisma/config";

type AdapterFactory = Awaited<
  ReturnType<NonNullable<Extract<PrismaConfig, { engine: "js" }>["adapter"]>>
>;

export default defineConfig({
  schema: path.join("prisma", "schema.prisma"),
  migrations: { path: path.join("prisma", "migrations") },
  engine: "js",
  experimental: { adapter: true },
  async adapter() {
    const url = process.env.DATABASE_URL;
    if (url) {
      // `?schema=name` means what it means to the service's migrator: that schema for the
      // tables and for `_prisma_migrations`. pg ignores the parameter, so it becomes the
      // session's search_path and the adapter's schema.
      const parsed = new URL(url);
      const schema = parsed.searchParams.get("schema") || "public";
      parsed.searchParams.delete("schema");
      const { PrismaPg } = await import("@prisma/adapter-pg");
      const factory = new PrismaPg(
        { connectionString: parsed.toString(), options: `-c search_path="${schema}"` },
        { schema },
      );
      // The adapter runs a migration script by splitting it on ";", which breaks the SQL
      // functions (dollar-quoted bodies) our migrations define. Postgres takes the whole script
      // as one simple query, as the services' migrator sends it, so `migrate deploy` works too.
      const connect = factory.connect.bind(factory);
      factory.connect = async () => {
        const adapter = await connect();
        const pool = adapter.underlyingDriver();
        adapter.executeScript = async (script: string) => {
          await pool.query(script);
        };
        return adapter;
      };
      return factory;
    }
    const { PGlite } = await import("@electric-sql/pglite");
    const { PrismaPGlite } = await import("pglite-prisma-adapter");
    const dir = path.resolve(process.env.DATA_DIR ?? ".prover-boost", "pglite");
    // Typed against its own copy of Prisma's adapter interfaces; same runtime contract.
    return new PrismaPGlite(new PGlite(dir)) as unknown as AdapterFactory;
  },
});
