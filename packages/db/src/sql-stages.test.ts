// Block stages move in Postgres too: pb_record_proof sets `proven` inside the statement that
// records a root proof. This reads every migration's SQL, finds each statement that assigns the
// Block's stage, works out which (from, to) moves it can make, and checks each one against core's
// lifecycle table. A stage assignment in a shape the reader does not understand fails the test:
// it must be taught, not skipped.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { canTransition, type Stage, stages } from "@prover-boost/core";
import { describe, expect, it } from "vitest";
import { defaultMigrationsDir } from "./migrate.ts";

interface Move {
  from: Stage;
  to: Stage;
  where: string;
}

const isStage = (s: string): s is Stage => (stages as readonly string[]).includes(s);

function stageLiteral(s: string, where: string): Stage {
  if (!isStage(s)) throw new Error(`${where}: '${s}' is not a stage`);
  return s;
}

/** Stages a condition restricts `stage` to (`stage IN (...)` / `stage = '...'`), or null. */
function stagesIn(cond: string, where: string): Stage[] | null {
  const found: Stage[] = [];
  let any = false;
  for (const m of cond.matchAll(/(?<![\w."])"?stage"?\s+IN\s*\(([^)]*)\)/gi)) {
    any = true;
    for (const lit of m[1]!.matchAll(/'([^']*)'/g)) found.push(stageLiteral(lit[1]!, where));
  }
  for (const m of cond.matchAll(/(?<![\w."])"?stage"?\s*=\s*'([^']*)'/gi)) {
    any = true;
    found.push(stageLiteral(m[1]!, where));
  }
  return any ? found : null;
}

/** Splits at top-level commas (outside parentheses and CASE ... END). */
function splitAssignments(set: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  const tokens = set.matchAll(/\(|\)|,|\bCASE\b|\bEND\b/gi);
  for (const t of tokens) {
    const tok = t[0].toUpperCase();
    if (tok === "(" || tok === "CASE") depth++;
    else if (tok === ")" || tok === "END") depth--;
    else if (depth === 0) {
      parts.push(set.slice(start, t.index));
      start = t.index! + 1;
    }
  }
  parts.push(set.slice(start));
  return parts.map((p) => p.trim());
}

/** Every stage move the SQL can make. Throws on a stage write it cannot read. */
function stageMovesOf(sql: string, file: string): Move[] {
  const text = sql.replace(/--[^\n]*/g, "");
  if (/INSERT\s+INTO\s+"Block"/i.test(text)) {
    throw new Error(`${file}: inserts Block rows; blocks are created by createBlock only`);
  }
  const moves: Move[] = [];
  for (const m of text.matchAll(/UPDATE\s+"Block"\s+SET\b([\s\S]*?);/gi)) {
    const body = m[1]!;
    const at = body.search(/\bWHERE\b/i);
    const set = at < 0 ? body : body.slice(0, at);
    const whereClause = at < 0 ? "" : body.slice(at);
    const where = `${file}: UPDATE "Block" SET${set.slice(0, 60).replace(/\s+/g, " ")}...`;
    const fromWhere = stagesIn(whereClause, where) ?? [...stages];
    for (const assignment of splitAssignments(set)) {
      const a = /^"?stage"?\s*=\s*([\s\S]*)$/i.exec(assignment);
      if (!a) continue;
      const rhs = a[1]!.trim();
      const literal = /^'([^']*)'$/.exec(rhs);
      if (literal) {
        const to = stageLiteral(literal[1]!, where);
        for (const from of fromWhere) moves.push({ from, to, where });
        continue;
      }
      const kase = /^CASE\s+([\s\S]*?)\s+ELSE\s+"?stage"?\s+END$/i.exec(rhs);
      if (!kase) throw new Error(`${where}: cannot read the stage assignment "${rhs}"`);
      const whens = [...kase[1]!.matchAll(/WHEN\s+([\s\S]*?)\s+THEN\s+'([^']*)'/gi)];
      if (whens.length === 0) throw new Error(`${where}: cannot read the CASE "${rhs}"`);
      for (const w of whens) {
        const to = stageLiteral(w[2]!, where);
        const from = (stagesIn(w[1]!, where) ?? fromWhere).filter((s) => fromWhere.includes(s));
        for (const f of from) moves.push({ from: f, to, where });
      }
    }
  }
  return moves.filter((mv) => mv.from !== mv.to);
}

function migrations(): { file: string; sql: string }[] {
  return readdirSync(defaultMigrationsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(d.name, "migration.sql"))
    .map((file) => ({ file, sql: readFileSync(join(defaultMigrationsDir, file), "utf8") }));
}

describe("stage moves in SQL", () => {
  it("every move a migration's SQL can make is allowed by core's lifecycle", () => {
    const moves = migrations().flatMap(({ file, sql }) => stageMovesOf(sql, file));
    // pb_record_proof's root proof closes a block being proven: the reader must see it.
    expect(moves.map((m) => `${m.from}->${m.to}`).sort()).toEqual(
      expect.arrayContaining(["open_proving->proven", "proving->proven"]),
    );
    const forbidden = moves.filter((m) => !canTransition(m.from, m.to));
    expect(forbidden).toEqual([]);
  });

  it("finds a forbidden move and refuses SQL it cannot read", () => {
    const bad = `UPDATE "Block" SET "updatedAt" = 1, stage = 'paid' WHERE stage IN ('proving');`;
    expect(stageMovesOf(bad, "bad.sql")).toMatchObject([{ from: "proving", to: "paid" }]);
    const unguarded = `UPDATE "Block" SET stage = CASE WHEN p_root THEN 'proven' ELSE stage END;`;
    const targets = stageMovesOf(unguarded, "x.sql").filter((m) => !canTransition(m.from, m.to));
    expect(targets.length).toBeGreaterThan(0);
    expect(() =>
      stageMovesOf(`UPDATE "Block" SET stage = p_stage WHERE number = 1;`, "y.sql"),
    ).toThrow(/cannot read/);
    expect(() => stageMovesOf(`UPDATE "Block" SET stage = 'nonsense';`, "z.sql")).toThrow(
      /not a stage/,
    );
    expect(() => stageMovesOf(`INSERT INTO "Block" (number) VALUES (1);`, "w.sql")).toThrow(
      /createBlock/,
    );
  });
});
