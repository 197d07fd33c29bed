import { describe, expect, it } from "vitest";
import { createStatusBodyCache } from "./status-cache.js";

const rendered = (body: string) => async () => body;

describe("createStatusBodyCache", () => {
  it("hands a body back within maxAgeMs, per principal, and never after", async () => {
    let now = 1_000;
    const cache = createStatusBodyCache(40, () => now);
    expect(await cache.fill("", rendered('{"label":"operator"}'))).toBe('{"label":"operator"}');
    await cache.fill("7", rendered('{"label":"agent 7"}'));
    expect(cache.get("")).toBe('{"label":"operator"}');
    expect(cache.get("7")).toBe('{"label":"agent 7"}');
    expect(cache.get("8")).toBeUndefined();
    now += 40;
    expect(cache.get("7")).toBe('{"label":"agent 7"}');
    now += 1;
    expect(cache.get("")).toBeUndefined();
    expect(cache.get("7")).toBeUndefined();
  });

  it("forgets everything on clear(), and caches nothing with maxAgeMs 0", async () => {
    const cache = createStatusBodyCache(60_000);
    await cache.fill("", rendered("body"));
    cache.clear();
    expect(cache.get("")).toBeUndefined();
    const off = createStatusBodyCache(0);
    await off.fill("", rendered("body"));
    expect(off.get("")).toBeUndefined();
  });

  it("answers but does not keep a render that a clear() overtook", async () => {
    const cache = createStatusBodyCache(60_000);
    let finish = (_body: string) => {};
    const render = new Promise<string>((resolve) => {
      finish = resolve;
    });
    const filling = cache.fill("", () => render);
    cache.clear(); // this process rotated while the old status was being read
    finish("before the rotation");
    expect(await filling).toBe("before the rotation");
    expect(cache.get("")).toBeUndefined();
  });

  it("keeps nothing when the render fails", async () => {
    const cache = createStatusBodyCache(60_000);
    await expect(
      cache.fill("", async () => {
        throw new Error("store unavailable");
      }),
    ).rejects.toThrow("store unavailable");
    expect(cache.get("")).toBeUndefined();
  });

  it("holds at most 64 principals: a 65th empties it rather than growing", async () => {
    const cache = createStatusBodyCache(60_000);
    for (let agentId = 1; agentId <= 64; agentId++) {
      await cache.fill(String(agentId), rendered(`body ${agentId}`));
    }
    expect(cache.get("1")).toBe("body 1");
    await cache.fill("65", rendered("body 65"));
    expect(cache.get("1")).toBeUndefined();
    expect(cache.get("65")).toBe("body 65");
  });

  it("shares one render among fills for a principal while it runs, but not across a clear()", async () => {
    const cache = createStatusBodyCache(60_000);
    let renders = 0;
    const finishers: ((body: string) => void)[] = [];
    const slowRender = () => {
      renders += 1;
      return new Promise<string>((resolve) => finishers.push(resolve));
    };
    const first = cache.fill("", slowRender);
    const second = cache.fill("", slowRender);
    const otherPrincipal = cache.fill("7", slowRender);
    expect(renders).toBe(2);
    cache.clear(); // a rotation: a fill from now on must not get the body read before it
    const afterClear = cache.fill("", slowRender);
    expect(renders).toBe(3);
    finishers[0]?.("old");
    finishers[1]?.("agent 7");
    finishers[2]?.("new");
    expect([await first, await second, await otherPrincipal, await afterClear]).toEqual([
      "old",
      "old",
      "agent 7",
      "new",
    ]);
    expect(cache.get("")).toBe("new");
    // Done: the next fill renders again.
    await cache.fill("", rendered("newer"));
    expect(renders).toBe(3);
    expect(cache.get("")).toBe("newer");
  });

  it("shares nothing with maxAgeMs 0: every fill renders", async () => {
    const cache = createStatusBodyCache(0);
    let renders = 0;
    const render = async () => {
      renders += 1;
      return "body";
    };
    await Promise.all([cache.fill("", render), cache.fill("", render)]);
    expect(renders).toBe(2);
  });
});
