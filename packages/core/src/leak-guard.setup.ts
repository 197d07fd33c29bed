import { afterEach, expect } from "vitest";

/**
 * Runs around every core test: nothing written to the console, stdout or stderr during the
 * whole suite may contain a faucet key or recovery code.
 */
const SECRET = /\blfr?_[A-Za-z0-9_-]{43}\b/;
const leaks: string[] = [];

function guard<T extends (...args: never[]) => unknown>(original: T): T {
  return function (this: unknown, ...args: Parameters<T>) {
    const text = args.map((arg) => (typeof arg === "string" ? arg : safeJson(arg))).join(" ");
    if (SECRET.test(text)) leaks.push(text.slice(0, 200).replace(SECRET, "lf_<KEY>"));
    return original.apply(this, args);
  } as T;
}

function safeJson(value: unknown): string {
  if (value instanceof Error)
    return `${value.message} ${value.stack ?? ""} ${safeJson({ ...value })}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

for (const method of ["log", "info", "warn", "error", "debug"] as const) {
  console[method] = guard(console[method].bind(console));
}
process.stdout.write = guard(
  process.stdout.write.bind(process.stdout),
) as typeof process.stdout.write;
process.stderr.write = guard(
  process.stderr.write.bind(process.stderr),
) as typeof process.stderr.write;

afterEach(() => {
  const found = leaks.splice(0);
  expect(found, "a raw key was written to the console").toEqual([]);
});
