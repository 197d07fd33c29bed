import { describe, expect, it } from "vitest";
import { deepFreeze, frozenCopy, markDisposable, thawedCopy } from "./freeze.js";

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

describe("thawedCopy", () => {
  it("copies frozen data writable, keeps __proto__ keys, and shares what is not plain data", () => {
    const sealed = Object.freeze(new (class Sealed {})());
    const frozen = deepFreeze({
      record: { key: sealed, alternates: [{ key: sealed, profile: "a" }] },
      body: JSON.parse('{"__proto__":{"x":1},"list":[{"__proto__":0}]}'),
    });
    const copy = thawedCopy(frozen) as {
      record: { key: unknown; alternates: { key: unknown; profile: string }[] };
      body: object;
    };
    expect(copy).toEqual(frozen);
    expect(Object.isFrozen(copy.record) || Object.isFrozen(copy.record.alternates)).toBe(false);
    copy.record.alternates.push({ key: sealed, profile: "b" });
    expect(frozen.record.alternates).toHaveLength(1);
    expect(copy.record.key).toBe(sealed);
    expect(copy.record.alternates[0]?.key).toBe(sealed);
    expect(Object.getPrototypeOf(copy.body)).toBe(Object.prototype);
    expect(Object.hasOwn(copy.body, "__proto__")).toBe(true);
    expect(JSON.stringify(copy.body)).toBe(JSON.stringify(frozen.body));
  });
});
