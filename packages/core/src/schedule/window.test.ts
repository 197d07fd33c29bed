import { describe, expect, it } from "vitest";
import { RekeyError } from "../errors.js";
import { isWindowOpen, occurrencesFrom, parseWindow, windowLengthSeconds } from "./window.js";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const firstOpening = (text: string, from: string) => {
  for (const { start, end } of occurrencesFrom(parseWindow(text), at(from))) {
    return { start: iso(start), end: iso(end) };
  }
  return undefined;
};

function refusal(text: string): RekeyError {
  try {
    parseWindow(text);
  } catch (error) {
    if (error instanceof RekeyError) return error;
    throw error;
  }
  throw new Error(`${text} was accepted`);
}

describe("parseWindow", () => {
  it("reads days, times and a zone, and writes them back canonically", () => {
    expect(parseWindow("Mon-Fri 02:00-04:00 Europe/Berlin").text).toBe(
      "Mon-Fri 02:00-04:00 Europe/Berlin",
    );
    expect(parseWindow("mon,tue,wed,sat 01:30-02:00").text).toBe("Mon-Wed,Sat 01:30-02:00 UTC");
    expect(parseWindow("daily 22:00-02:00 UTC").text).toBe("daily 22:00-02:00 UTC");
    expect(parseWindow("Fri-Mon 00:00-24:00").text).toBe("Mon,Fri-Sun 00:00-24:00 UTC");
    expect(windowLengthSeconds(parseWindow("daily 22:00-02:00"))).toBe(4 * 3600);
  });

  it("refuses a window that never opens, an unknown zone or day, and bad times", () => {
    expect(refusal("daily 02:00-02:00").message).toMatch(/never opens/);
    expect(refusal("Mon-Fri 02:00-04:00 Mars/Olympus").message).toMatch(
      /unknown time zone "Mars\/Olympus"/,
    );
    expect(refusal("Someday 02:00-04:00").message).toMatch(/unknown day "someday"/);
    expect(refusal("daily 25:00-26:00").message).toMatch(/not a time of day/);
    expect(refusal("daily 24:00-01:00").message).toMatch(/not a time of day/);
    expect(refusal("at night").message).toMatch(/not DAYS HH:MM-HH:MM/);
    expect(refusal("daily 2:00-4:00").code).toBe("INVALID_INPUT");
  });
});

describe("window openings", () => {
  it("opens only on its days, in its zone", () => {
    const window = parseWindow("Mon-Fri 02:00-04:00 Europe/Berlin");
    // Wednesday 2026-01-07, 02:30 in Berlin (CET, UTC+1).
    expect(isWindowOpen(window, at("2026-01-07T01:30:00Z"))).toBe(true);
    expect(isWindowOpen(window, at("2026-01-07T03:00:00Z"))).toBe(false);
    // Saturday 2026-01-10.
    expect(isWindowOpen(window, at("2026-01-10T01:30:00Z"))).toBe(false);
    expect(firstOpening("Mon-Fri 02:00-04:00 Europe/Berlin", "2026-01-09T05:00:00Z")).toEqual({
      start: "2026-01-12T01:00:00.000Z",
      end: "2026-01-12T03:00:00.000Z",
    });
  });

  it("runs past midnight into the next day", () => {
    const window = parseWindow("Fri 22:00-02:00");
    // Friday 2026-01-09 22:00 to Saturday 02:00 UTC.
    expect(isWindowOpen(window, at("2026-01-10T01:59:00Z"))).toBe(true);
    expect(isWindowOpen(window, at("2026-01-10T02:00:00Z"))).toBe(false);
    expect(isWindowOpen(window, at("2026-01-08T23:00:00Z"))).toBe(false);
  });

  it("does not open inside a spring-forward gap, and shortens a window that the gap cuts", () => {
    // 2026-03-29: Berlin's clocks jump from 02:00 CET to 03:00 CEST.
    expect(firstOpening("daily 02:00-03:00 Europe/Berlin", "2026-03-28T12:00:00Z")).toEqual({
      start: "2026-03-30T00:00:00.000Z",
      end: "2026-03-30T01:00:00.000Z",
    });
    expect(firstOpening("daily 02:00-04:00 Europe/Berlin", "2026-03-28T12:00:00Z")).toEqual({
      start: "2026-03-29T01:00:00.000Z",
      end: "2026-03-29T02:00:00.000Z",
    });
  });

  it("takes a repeated fall-back time at its first occurrence, so the window lasts longer", () => {
    // 2026-10-25: Berlin's clocks go back from 03:00 CEST to 02:00 CET.
    expect(firstOpening("daily 02:00-03:00 Europe/Berlin", "2026-10-24T12:00:00Z")).toEqual({
      start: "2026-10-25T00:00:00.000Z",
      end: "2026-10-25T02:00:00.000Z",
    });
  });
});
