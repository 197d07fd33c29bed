import { readFileSync } from "node:fs";
import { ERROR_CODES } from "@rekey/core";
import { describe, expect, it } from "vitest";
import {
  EXIT_CHECK_FAILED,
  EXIT_CODES,
  EXIT_COMMAND_NOT_EXECUTABLE,
  EXIT_COMMAND_NOT_FOUND,
  EXIT_USAGE,
  exitCodeFor,
} from "./exit-codes.js";

describe("exit codes", () => {
  it("maps every core error code to a non-zero exit code", () => {
    for (const code of ERROR_CODES) expect(EXIT_CODES[code], code).toBeGreaterThan(0);
    expect(Object.keys(EXIT_CODES).sort()).toEqual([...ERROR_CODES].sort());
  });

  it("treats a code this build does not know as internal", () => {
    expect(exitCodeFor("SOMETHING_NEW")).toBe(EXIT_CODES.INTERNAL);
    expect(exitCodeFor("toString")).toBe(EXIT_CODES.INTERNAL);
  });

  it("the README table documents each code with the exit code the CLI uses", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const rows = readme.split("\n").filter((line) => /^\| \d+\s+\|/.test(line));
    const documented = new Map<string, number>();
    for (const row of rows) {
      const exit = Number(/^\| (\d+)\s+\|/.exec(row)?.[1]);
      for (const [, code] of row.matchAll(/`([A-Z_]+)`/g)) documented.set(code ?? "", exit);
    }
    for (const code of ERROR_CODES) expect(documented.get(code), code).toBe(EXIT_CODES[code]);
    const exits = rows.map((row) => Number(/^\| (\d+)/.exec(row)?.[1]));
    expect(exits).toContain(EXIT_USAGE);
    expect(exits).toContain(EXIT_CHECK_FAILED);
    expect(exits).toContain(EXIT_COMMAND_NOT_FOUND);
    expect(exits).toContain(EXIT_COMMAND_NOT_EXECUTABLE);
  });
});
