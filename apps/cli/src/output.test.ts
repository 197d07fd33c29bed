import { stripVTControlCharacters } from "node:util";
import pc from "picocolors";
import { describe, expect, it } from "vitest";
import { createOutput, formatInstant, formatTable } from "./output.js";

describe("formatTable", () => {
  it("pads by what a terminal shows: colour codes take no width, wide characters two", () => {
    const colors = pc.createColors(true);
    const table = formatTable(
      ["agent", "result", "key"],
      [
        ["1", colors.green("rotated"), "fp:aaaa"],
        ["2", "failed", "fp:bbbb"],
        ["3", "日本", "fp:cccc"],
      ],
    );
    const shown = table.split("\n").map((line) => stripVTControlCharacters(line));
    // The coloured row lines up with the plain ones.
    const keyColumn = shown.slice(2, 4).map((line) => line.indexOf("fp:"));
    expect(new Set(keyColumn).size).toBe(1);
    // "日本" is two characters wide each on a terminal: four columns, so two fewer spaces.
    expect(shown[4]).toBe("3      日本     fp:cccc");
  });
});

describe("times for people", () => {
  it("formatInstant shows local time with the zone", () => {
    expect(formatInstant("2026-12-02T13:00:00.000Z", "UTC")).toBe("2026-12-02 13:00:00 UTC");
    expect(formatInstant("2026-07-02T13:00:00.000Z", "Europe/London")).toBe(
      "2026-07-02 14:00:00 BST",
    );
    expect(formatInstant("2026-12-02T13:00:00.000Z", "America/New_York")).toMatch(
      /^2026-12-02 08:00:00 \S+$/,
    );
    expect(formatInstant("not a time")).toBe("not a time");
  });

  it("a terminal gets local time, a pipe or --json ISO-8601 UTC", () => {
    const written: string[] = [];
    const sink = { write: (text: string) => written.push(text) };
    const base = { stdout: sink, stderr: sink, quiet: false, verbose: false, color: false };
    const iso = "2026-07-02T13:00:00.000Z";
    const terminal = createOutput({
      ...base,
      json: false,
      localTime: true,
      timeZone: "Europe/London",
    });
    expect(terminal.time(iso)).toBe("2026-07-02 14:00:00 BST");
    terminal.error({ code: "COOLDOWN_ACTIVE", message: "wait", cooldown_until: iso });
    expect(written.join("")).toContain("cooldown until 2026-07-02 14:00:00 BST");
    expect(createOutput({ ...base, json: false, localTime: false }).time(iso)).toBe(iso);
    written.length = 0;
    createOutput({ ...base, json: true, localTime: true }).result("x", { at: iso }, () => "");
    expect(JSON.parse(written.join(""))).toMatchObject({ at: iso });
  });
});
