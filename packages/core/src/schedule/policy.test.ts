import { describe, expect, it } from "vitest";
import { RekeyError } from "../errors.js";
import { agent, OPERATOR } from "../principal.js";
import { formatPolicyDuration, parseDurationSeconds } from "./duration.js";
import { dueStateOf, jitterOffsetMs, parsePolicy, type RotationPolicy } from "./policy.js";

const SET_AT = "2026-01-01T00:00:00.000Z";
const at = (iso: string) => Date.parse(iso);
const DAY = 86_400_000;

function refusal(run: () => unknown): RekeyError {
  try {
    run();
  } catch (error) {
    if (error instanceof RekeyError) return error;
    throw error;
  }
  throw new Error("accepted");
}

describe("durations", () => {
  it("reads what ms reads, in whole seconds", () => {
    expect(parseDurationSeconds("30d", "--max-age")).toBe(30 * 86_400);
    expect(parseDurationSeconds("1.5h", "--max-age")).toBe(5400);
    expect(parseDurationSeconds("2 days", "--max-age")).toBe(172_800);
    expect(formatPolicyDuration(5400)).toBe("90m");
    expect(formatPolicyDuration(30 * 86_400)).toBe("30d");
  });

  it("refuses a bare number, nonsense and fractions of a second", () => {
    expect(refusal(() => parseDurationSeconds("30", "--max-age")).message).toMatch(
      /--max-age "30" is not a duration/,
    );
    expect(refusal(() => parseDurationSeconds("soon", "--jitter")).code).toBe("INVALID_INPUT");
    expect(refusal(() => parseDurationSeconds("1.5s", "--jitter")).message).toMatch(
      /whole seconds/,
    );
  });
});

describe("parsePolicy", () => {
  it("keeps whole seconds and the canonical window", () => {
    expect(
      parsePolicy(
        { maxAge: "30d", window: "mon-fri 02:00-04:00 Europe/Berlin", jitter: "20m" },
        agent(7),
        SET_AT,
      ),
    ).toEqual({
      maxAgeSeconds: 2_592_000,
      window: "Mon-Fri 02:00-04:00 Europe/Berlin",
      jitterSeconds: 1200,
      setAt: SET_AT,
    });
  });

  it("refuses a max-age not longer than the principal's cooldown", () => {
    expect(refusal(() => parsePolicy({ maxAge: "30m" }, agent(7), SET_AT)).message).toMatch(
      /30m is not longer than the 30-minute withdrawal cooldown/,
    );
    expect(parsePolicy({ maxAge: "31m" }, agent(7), SET_AT).maxAgeSeconds).toBe(1860);
    expect(refusal(() => parsePolicy({ maxAge: "45m" }, OPERATOR, SET_AT)).message).toMatch(
      /60-minute/,
    );
  });

  it("refuses a jitter as long as the window, and a window that never opens", () => {
    expect(
      refusal(() =>
        parsePolicy({ maxAge: "1d", window: "daily 02:00-03:00", jitter: "1h" }, agent(1), SET_AT),
      ).message,
    ).toMatch(/--jitter 1h is not shorter than the window \(1h\)/);
    expect(
      refusal(() => parsePolicy({ maxAge: "1d", window: "daily 03:00-03:00" }, agent(1), SET_AT))
        .message,
    ).toMatch(/never opens/);
    expect(
      refusal(() =>
        parsePolicy({ maxAge: "1d", window: "daily 03:00-04:00 Nowhere/Land" }, agent(1), SET_AT),
      ).message,
    ).toMatch(/unknown time zone/);
  });
});

describe("jitterOffsetMs", () => {
  it("is fixed per principal, whole seconds, below the jitter, and spreads principals", () => {
    const offsets = Array.from({ length: 50 }, (_, index) =>
      jitterOffsetMs(`http://127.0.0.1:1/#agent:${index + 1}`, 1200),
    );
    expect(offsets).toEqual(
      Array.from({ length: 50 }, (_, index) =>
        jitterOffsetMs(`http://127.0.0.1:1/#agent:${index + 1}`, 1200),
      ),
    );
    for (const offset of offsets) {
      expect(offset % 1000).toBe(0);
      expect(offset).toBeGreaterThanOrEqual(0);
      expect(offset).toBeLessThan(1_200_000);
    }
    expect(new Set(offsets).size).toBeGreaterThan(40);
    expect(jitterOffsetMs("x", undefined)).toBe(0);
  });
});

describe("dueStateOf", () => {
  const id = "http://127.0.0.1:1/#agent:7";

  it("without a window: due at max-age plus the jitter offset, overdue a day later", () => {
    const policy: RotationPolicy = { maxAgeSeconds: 7 * 86_400, jitterSeconds: 600, setAt: SET_AT };
    const saved = at("2026-01-01T10:00:00Z");
    const dueAt = saved + 7 * DAY + jitterOffsetMs(id, 600);
    expect(dueStateOf(policy, saved, id, dueAt - 1)).toMatchObject({
      due: false,
      inWindow: true,
      nextRotationAt: new Date(dueAt).toISOString(),
      overdue: false,
    });
    expect(dueStateOf(policy, saved, id, dueAt)).toMatchObject({ due: true, overdue: false });
    expect(dueStateOf(policy, saved, id, dueAt + DAY)).toMatchObject({ due: true, overdue: true });
  });

  it("with a window: rotates at the opening plus the offset on the day it is due, without drift", () => {
    const policy: RotationPolicy = {
      maxAgeSeconds: 86_400,
      window: "daily 02:00-04:00 UTC",
      jitterSeconds: 1200,
      setAt: SET_AT,
    };
    const offset = jitterOffsetMs(id, 1200);
    // Rotated yesterday a few seconds after its slot (a scheduler's tick late).
    const saved = at("2026-01-05T02:00:00Z") + offset + 7_000;
    const slot = at("2026-01-06T02:00:00Z") + offset;
    expect(dueStateOf(policy, saved, id, slot - 1)).toMatchObject({
      due: false,
      nextRotationAt: new Date(slot).toISOString(),
    });
    expect(dueStateOf(policy, saved, id, slot).due).toBe(true);
  });

  it("rotates in the opening during which the key reaches max-age, at most one window early", () => {
    const policy: RotationPolicy = {
      maxAgeSeconds: 86_400,
      window: "daily 02:00-04:00 UTC",
      setAt: SET_AT,
    };
    const saved = at("2026-01-05T03:30:00Z");
    // Reaches max-age at 03:30 the next day, inside that day's opening: rotated as it opens.
    expect(dueStateOf(policy, saved, id, saved).nextRotationAt).toBe("2026-01-06T02:00:00.000Z");
    // Saved after the window: due in the next day's window, at its opening.
    const late = at("2026-01-05T10:00:00Z");
    expect(dueStateOf(policy, late, id, late).nextRotationAt).toBe("2026-01-07T02:00:00.000Z");
  });

  it("a missed window (scheduler down) waits for the next opening, and turns overdue", () => {
    const policy: RotationPolicy = {
      maxAgeSeconds: 86_400,
      window: "Mon-Fri 02:00-04:00 UTC",
      graceSeconds: 3600,
      setAt: SET_AT,
    };
    const saved = at("2026-01-08T02:00:00Z"); // Thursday
    const friday = at("2026-01-09T05:00:00Z");
    expect(dueStateOf(policy, saved, id, friday)).toMatchObject({
      due: false,
      inWindow: false,
      nextRotationAt: "2026-01-12T02:00:00.000Z",
      overdueAt: "2026-01-09T03:00:00.000Z",
      overdue: true,
    });
    expect(dueStateOf(policy, saved, id, at("2026-01-12T02:10:00Z")).due).toBe(true);
  });

  it("a clock that jumps back makes nothing due", () => {
    const policy: RotationPolicy = { maxAgeSeconds: 86_400, setAt: SET_AT };
    const saved = at("2026-01-08T02:00:00Z");
    expect(dueStateOf(policy, saved, id, saved - DAY)).toMatchObject({
      due: false,
      overdue: false,
    });
  });

  it("a stored window whose zone this Node does not know fails loudly", () => {
    const policy: RotationPolicy = {
      maxAgeSeconds: 86_400,
      window: "daily 02:00-04:00 Gone/Zone",
      setAt: SET_AT,
    };
    expect(refusal(() => dueStateOf(policy, 0, id, 0)).code).toBe("INVALID_INPUT");
  });
});
