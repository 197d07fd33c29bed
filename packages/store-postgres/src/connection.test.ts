import { describe, expect, it } from "vitest";
import {
  isPostgresUrl,
  parsePostgresUrl,
  redactPostgresUrl,
  storeUnavailable,
} from "./connection.js";

describe("parsePostgresUrl", () => {
  it("takes rekey's schema out of the URL and leaves everything else to pg", () => {
    const target = parsePostgresUrl(
      "postgres://rekey:p%40ss%3Aw%2Frd@db.internal:5432/ops?schema=fleet&sslmode=verify-full",
    );
    expect(target.schema).toBe("fleet");
    expect(target.connectionString).toBe(
      "postgres://rekey:p%40ss%3Aw%2Frd@db.internal:5432/ops?sslmode=verify-full",
    );
    // The location names the schema (two schemas of one database are two stores), not the
    // password.
    expect(target.location).toBe(
      "postgres://rekey:***@db.internal:5432/ops?sslmode=verify-full&schema=fleet",
    );
    expect(parsePostgresUrl("postgres://u@h/db?schema=team_a").location).not.toBe(
      parsePostgresUrl("postgres://u@h/db?schema=team_b").location,
    );
    expect(parsePostgresUrl("postgres://u@h/db?schema=rekey").location).toBe("postgres://u@h/db");
  });

  it("defaults the schema to rekey, and an explicit schema beats the URL's", () => {
    expect(parsePostgresUrl("postgresql://user@[::1]:5433/db").schema).toBe("rekey");
    expect(parsePostgresUrl("postgres://h/db?schema=a", "b").schema).toBe("b");
  });

  it("refuses what is not a postgres URL or a plain schema name, without repeating the URL", () => {
    expect(() => parsePostgresUrl("mysql://user:hunter2@h/db")).toThrow(/starts with postgres/);
    for (const bad of ["Upper", "1st", "a-b", "x".repeat(64), 'x"; DROP TABLE t; --']) {
      expect(() => parsePostgresUrl("postgres://h/db", bad)).toThrow(/plain lower-case/);
    }
    expect(() => parsePostgresUrl("postgres://user:hunter2@[::1/db")).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        message: expect.not.stringContaining("hunter2"),
      }),
    );
  });
});

describe("redactPostgresUrl", () => {
  it("hides a password in the user part or in a password parameter", () => {
    expect(redactPostgresUrl("postgres://u:secret@h/db")).toBe("postgres://u:***@h/db");
    expect(redactPostgresUrl("postgres://u@h/db?password=secret")).toBe(
      "postgres://u@h/db?password=***",
    );
    expect(redactPostgresUrl("postgres://u@h/db")).toBe("postgres://u@h/db");
    expect(redactPostgresUrl("not a url")).not.toContain("not a url");
  });

  it("recognises postgres:// and postgresql:// only", () => {
    expect([isPostgresUrl("POSTGRES://h/db"), isPostgresUrl("postgresql://h")]).toEqual([
      true,
      true,
    ]);
    expect([isPostgresUrl("postgresx://h"), isPostgresUrl("/var/lib/rekey")]).toEqual([
      false,
      false,
    ]);
  });
});

describe("the connection budget", () => {
  it("takes connections= out of the URL as the store's budget, from 3 to 1000", () => {
    const target = parsePostgresUrl("postgres://h/db?connections=12&sslmode=require");
    expect(target.connections).toBe(12);
    expect(target.connectionString).toBe("postgres://h/db?sslmode=require");
    expect(parsePostgresUrl("postgres://h/db").connections).toBeUndefined();
    for (const bad of ["2", "1001", "5.5", "-4", "lots", ""]) {
      expect(() => parsePostgresUrl(`postgres://h/db?connections=${bad}`)).toThrow(
        expect.objectContaining({ code: "CONFIG_INVALID" }),
      );
    }
  });

  it("calls a server without a free connection busy, with a retry time, not unavailable", () => {
    const full = Object.assign(new Error("sorry, too many clients already"), { code: "53300" });
    expect(storeUnavailable("read", "postgres://h/db", full)).toMatchObject({
      code: "STORE_BUSY",
      details: { retryAfterSeconds: 1, errno: "53300" },
    });
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(storeUnavailable("read", "postgres://h/db", refused).code).toBe("STORE_UNAVAILABLE");
  });
});
