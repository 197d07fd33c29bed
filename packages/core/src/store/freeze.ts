import type { DeepReadonly } from "./types.js";

/**
 * Freezes `value` and everything reachable from it, and returns it typed read-only. Stores
 * freeze the snapshots they share between readers, so one reader's mistake cannot change what
 * the next one reads: in ES modules (strict mode) a write to a frozen object throws.
 * Store data is plain JSON (objects, arrays, strings, numbers, booleans, null): no cycles.
 */
export function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}

/**
 * A frozen copy of `value` that shares what is already frozen: a store keeps what a caller
 * wrote without copying the records the caller's draft shares with an earlier snapshot
 * (`draftOf`), which are frozen and so cannot change under it.
 */
export function frozenCopy<T>(value: T): DeepReadonly<T> {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) {
    return value as DeepReadonly<T>;
  }
  if (disposable.has(value)) {
    // A draft nobody else holds (see `markDisposable`): frozen where it stands, not copied;
    // its children that are not frozen yet are replaced by frozen copies.
    const draft = value as Record<string, unknown>;
    for (const key in draft) {
      const child = draft[key];
      if (typeof child === "object" && child !== null && !Object.isFrozen(child)) {
        draft[key] = frozenCopy(child);
      }
    }
    return Object.freeze(value) as DeepReadonly<T>;
  }
  // Built with `map`/`fromEntries`, not `copy[key] = …`: an assignment to a key named
  // "__proto__" (valid JSON, e.g. in a remembered response body) would set the copy's
  // prototype instead of keeping the key.
  const copy = Array.isArray(value)
    ? value.map((child) => frozenCopy(child))
    : Object.fromEntries(Object.entries(value).map(([key, child]) => [key, frozenCopy(child)]));
  return Object.freeze(copy) as DeepReadonly<T>;
}

/** Objects whose only holder hands them to a store and never touches them again. */
const disposable = new WeakSet<object>();

/**
 * Marks `value` as a draft that its maker gives away on write (core's `draftOf` does, for its
 * document and maps): {@link frozenCopy} then freezes it in place instead of copying it, which
 * saves copying a thousand-entry map per write. Its unfrozen children are still copied.
 */
export function markDisposable<T extends object>(value: T): T {
  disposable.add(value);
  return value;
}

/**
 * A writable deep copy of frozen store data (a record a draft changes), in place of
 * `structuredClone`, which would turn a key left sealed by a read (`SealedKey`, frozen and
 * immutable) into an empty object: those are shared, not copied. Store data is plain JSON
 * otherwise. Throws nothing.
 */
export function thawedCopy<T>(value: DeepReadonly<T>): T {
  if (typeof value !== "object" || value === null) return value as T;
  if (Array.isArray(value)) {
    const items: unknown[] = new Array(value.length);
    for (let index = 0; index < value.length; index += 1) items[index] = thawedCopy(value[index]);
    return items as T;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value as T;
  const source = value as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(source)) {
    const child = thawedCopy(source[key]);
    // An assignment to "__proto__" (valid JSON, e.g. in a remembered response body) would set
    // the copy's prototype instead of keeping the key (see frozenCopy).
    if (key === "__proto__") {
      Object.defineProperty(copy, key, {
        value: child,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      copy[key] = child;
    }
  }
  return copy as T;
}
