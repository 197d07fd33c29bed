import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createStatusBodyCache } from "./status-cache.js";

describe("createStatusBodyCache", () => {
  it("hands a body back within maxAgeMs, per principal, and never after", async () => {
    const cache = createStatusBodyCache(40);
    cache.set("", '{"label":"operator"}');
    cache.set("7", '{"label":"agent 7"}');
    expect(cache.get("")).toBe('{"label":"operator"}');
    expect(cache.get("7")).toBe('{"label":"agent 7"}');
    expect(cache.get("8")).toBeUndefined();
    await sleep(60);
    expect(cache.get("")).toBeUndefined();
    expect(cache.get("7")).toBeUndefined();
  });

  it("forgets everything on clear(), and caches nothing with maxAgeMs 0", () => {
    const cache = createStatusBodyCache(60_000);
    cache.set("", "body");
    cache.clear();
    expect(cache.get("")).toBeUndefined();
    const off = createStatusBodyCache(0);
    off.set("", "body");
    expect(off.get("")).toBeUndefined();
  });

  it("holds at most 64 principals: a 65th empties it rather than growing", () => {
    const cache = createStatusBodyCache(60_000);
    for (let agentId = 1; agentId <= 64; agentId++) cache.set(String(agentId), `body ${agentId}`);
    expect(cache.get("1")).toBe("body 1");
    cache.set("65", "body 65");
    expect(cache.get("1")).toBeUndefined();
    expect(cache.get("65")).toBe("body 65");
  });
});
