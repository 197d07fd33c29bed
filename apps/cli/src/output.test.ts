import { stripVTControlCharacters } from "node:util";
import pc from "picocolors";
import { describe, expect, it } from "vitest";
import { formatTable } from "./output.js";

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
