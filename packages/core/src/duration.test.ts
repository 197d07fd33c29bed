import { describe, expect, it } from "vitest";
import { formatDuration } from "./duration.js";

describe("formatDuration", () => {
  it("shows two units at most, the second padded, the same way everywhere", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(-5)).toBe("0s");
    expect(formatDuration(12.4)).toBe("12s");
    expect(formatDuration(59.6)).toBe("1m 00s");
    expect(formatDuration(29 * 60 + 59)).toBe("29m 59s");
    expect(formatDuration(3600)).toBe("1h 00m");
    expect(formatDuration(3600 + 2 * 60 + 59)).toBe("1h 02m");
    expect(formatDuration(30 * 86_400 + 4 * 3600)).toBe("30d 04h");
  });
});
