import { z } from "zod";

/** What `JSON.parse` returns. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

// Deeper than any body rekey remembers, shallow enough that checking cannot exhaust the stack.
const MAX_DEPTH = 512;

function isJsonValue(value: unknown, depth: number): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (typeof value !== "object" || depth >= MAX_DEPTH) return false;
  if (Array.isArray(value)) return value.every((item) => isJsonValue(item, depth + 1));
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  return Object.values(value).every((item) => isJsonValue(item, depth + 1));
}

/**
 * A JSON value, checked where it stands. Not `z.json()`: zod rebuilds every object key by key,
 * and an assignment to a key named "__proto__" (valid JSON, as in a remembered response body)
 * sets the copy's prototype instead, so the key was lost on every read.
 */
export const jsonValueSchema = z.custom<JsonValue>(
  (value) => isJsonValue(value, 0),
  "expected a JSON value",
);
