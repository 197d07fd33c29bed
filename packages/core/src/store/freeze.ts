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
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value) ? [] : {};
  for (const [key, child] of Object.entries(value)) {
    (copy as Record<string, unknown>)[key] = frozenCopy(child);
  }
  return Object.freeze(copy) as DeepReadonly<T>;
}
