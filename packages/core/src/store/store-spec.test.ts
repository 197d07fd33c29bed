import { describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { assertNoPasswordInArgument, storeSpecHasPassword } from "./store-spec.js";

describe("a database password on the command line", () => {
  it("is found in the user part, in a password parameter, and in a URL that does not parse", () => {
    expect(storeSpecHasPassword("postgres://rekey:s3cret@db.example/rekey")).toBe(true);
    expect(storeSpecHasPassword("postgresql://db.example/rekey?password=s3cret")).toBe(true);
    expect(storeSpecHasPassword("postgres://u@localhost/db?sslpassword=x")).toBe(true);
    expect(storeSpecHasPassword("postgres://db/rekey?sslmode=require&PASSWORD=x")).toBe(true);
    expect(storeSpecHasPassword("postgres://u:p@[bad/x")).toBe(true);
    for (const spec of [
      "postgres://rekey@db.example/rekey",
      "postgres://db.example/rekey?sslmode=require",
      "memory",
      "/home/me/store:with:colons@x",
      "file:/tmp/a:b@c",
    ]) {
      expect(storeSpecHasPassword(spec), spec).toBe(false);
    }
  });

  it("is refused with CONFIG_INVALID and a hint, without repeating it", () => {
    let caught: unknown;
    try {
      assertNoPasswordInArgument("postgres://rekey:s3cret@db.example/rekey");
    } catch (error) {
      caught = error;
    }
    expect(isRekeyError(caught, "CONFIG_INVALID")).toBe(true);
    const error = caught as Error & { hint?: string };
    expect(`${error.message} ${error.hint}`).not.toContain("s3cret");
    expect(error.hint).toMatch(/PGPASSWORD.*\.pgpass.*REKEY_STORE/);
    expect(() => assertNoPasswordInArgument(undefined)).not.toThrow();
    expect(() => assertNoPasswordInArgument("postgres://rekey@db/rekey")).not.toThrow();
  });
});
