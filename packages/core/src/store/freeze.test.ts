import { describe, expect, it } from "vitest";
import { deepFreeze, frozenCopy, markDisposable } from "./freeze.js";

describe("frozenCopy", () => {
  it("copies what a caller still holds, and shares what is frozen already", () => {
    const shared = deepFreeze({ name: "kept" });
    const input = { record: shared, changed: { name: "new" } };
    const copy = frozenCopy(input);
    expect(copy).not.toBe(input);
    expect(copy.record).toBe(shared);
    expect(Object.isFrozen(copy.changed)).toBe(true);
    input.changed.name = "edited later";
    expect(copy.changed.name).toBe("new");
  });

  it("freezes a disposable draft in place, replacing its unfrozen children by frozen copies", () => {
    const changed = { name: "new" };
    const draft = markDisposable({ changed, kept: deepFreeze({ name: "kept" }) });
    const frozen = frozenCopy(draft);
    expect(frozen).toBe(draft);
    expect(Object.isFrozen(frozen)).toBe(true);
    expect(Object.isFrozen(frozen.changed)).toBe(true);
    // Whoever still holds the child it gave cannot change the frozen draft through it.
    changed.name = "edited later";
    expect(frozen.changed.name).toBe("new");
  });
});

describe("frozenCopy of JSON that names __proto__", () => {
  it("keeps a key named __proto__ as a key, at any depth", () => {
    const body = JSON.parse('{"body":[[{"__proto__":0}]],"__proto__":{"x":1}}');
    const copy = frozenCopy(body);
    expect(copy).toEqual(body);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.hasOwn(copy.body[0][0], "__proto__")).toBe(true);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(body));
  });
});
