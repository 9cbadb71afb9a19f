// Which errors mean "a dependency is unavailable" (503 UNAVAILABLE), in the shapes pg, Prisma's
// driver adapter, Prisma and ioredis actually produce them, and which do not.

import { DomainError, InvariantError } from "@prover-boost/core";
import type { FastifyError } from "fastify";
import { describe, expect, it } from "vitest";
import { classifyError, isUnavailable, unavailableDependency } from "./errors.ts";

const withCause = (message: string, cause: unknown) => Object.assign(new Error(message), { cause });

describe("isUnavailable", () => {
  it("is true of a dependency down or overloaded, false of anything about the request", () => {
    expect(isUnavailable(Object.assign(new Error("pool"), { code: "P2024" }))).toBe(true);
    expect(isUnavailable(Object.assign(new Error("tx"), { code: "P2028" }))).toBe(true);
    expect(isUnavailable(new Error("Query read timeout"))).toBe(true);
    expect(isUnavailable(Object.assign(new Error("unique"), { code: "P2002" }))).toBe(false);
    expect(isUnavailable(new Error("bid 0x01: bad signature"))).toBe(false);
    expect(isUnavailable(null)).toBe(false);
  });
});

describe("unavailableDependency", () => {
  it("recognizes a database that is down, stalled or refusing", () => {
    // pg-pool's connect deadline, as Prisma rethrows it (the socket error as its cause).
    expect(
      unavailableDependency(
        withCause(
          "Connection terminated due to connection timeout",
          new Error("Connection terminated unexpectedly"),
        ),
      ),
    ).toBe("database");
    expect(unavailableDependency(new Error("Query read timeout"))).toBe("database");
    // Prisma's known request error with the adapter's error in meta.
    const closed = Object.assign(new Error("Server has closed the connection."), {
      code: "P1017",
      meta: {
        driverAdapterError: { name: "DriverAdapterError", cause: { kind: "ConnectionClosed" } },
      },
    });
    expect(unavailableDependency(closed)).toBe("database");
    const adapterOnly = { name: "DriverAdapterError", cause: { kind: "DatabaseNotReachable" } };
    expect(unavailableDependency(adapterOnly)).toBe("database");
    const shuttingDown = { name: "DriverAdapterError", cause: { kind: "postgres", code: "57P01" } };
    expect(unavailableDependency(shuttingDown)).toBe("database");
  });

  it("recognizes Redis that is down, stalled, loading or full", () => {
    expect(unavailableDependency(new Error("Command timed out"))).toBe("redis");
    expect(unavailableDependency(new Error("Connection is closed."))).toBe("redis");
    // A pipeline member whose connection dropped before its reply (ioredis's AbortError).
    expect(unavailableDependency(new Error("Command aborted due to connection close"))).toBe(
      "redis",
    );
    expect(
      unavailableDependency(
        new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      ),
    ).toBe("redis");
    expect(unavailableDependency(new Error("LOADING Redis is loading the dataset in memory"))).toBe(
      "redis",
    );
    expect(unavailableDependency(new Error("OOM command not allowed when used memory"))).toBe(
      "redis",
    );
  });

  it("leaves other errors alone", () => {
    expect(unavailableDependency(new Error("boom"))).toBeNull();
    expect(unavailableDependency(new TypeError("x is undefined"))).toBeNull();
    // A constraint violation is a bug or a conflict, not an outage.
    expect(
      unavailableDependency({ code: "P2002", message: "Unique constraint failed" }),
    ).toBeNull();
    const syntax = { name: "DriverAdapterError", cause: { kind: "postgres", code: "42601" } };
    expect(unavailableDependency(syntax)).toBeNull();
    expect(unavailableDependency(undefined)).toBeNull();
  });
});

describe("classifyError", () => {
  const as = (err: unknown) => err as FastifyError;

  it("answers a broken internal invariant with 500 INTERNAL, not the client's fault", () => {
    expect(
      classifyError(as(new InvariantError("a block cannot move from paid to proving"))),
    ).toEqual({ code: "INTERNAL", message: "internal error" });
  });

  it("keeps a rule violation's code and message", () => {
    expect(classifyError(as(new DomainError("AUCTION_CLOSED", "closed")))).toEqual({
      code: "AUCTION_CLOSED",
      message: "closed",
    });
  });
});
