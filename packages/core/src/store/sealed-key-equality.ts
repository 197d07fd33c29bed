import { expect } from "vitest";
import { SealedKey } from "./encryption/sealed-key.js";

/**
 * A vitest equality tester: a key a read left sealed (`SealedKey`) equals the key it opens to.
 * Stores that seal keys at rest hand them back sealed (`openKey` opens one), so "reads back what
 * was written" compares what each key opens to: a key that does not open, or opens to another
 * key, is not equal. Undefined (no opinion) when neither side is a `SealedKey`. Throws nothing.
 */
export function sealedKeyEquals(a: unknown, b: unknown): boolean | undefined {
  if (!(a instanceof SealedKey) && !(b instanceof SealedKey)) return undefined;
  try {
    const clear = (value: unknown) => (value instanceof SealedKey ? value.open() : value);
    return clear(a) === clear(b);
  } catch {
    return false;
  }
}

/** Makes `toEqual` and friends compare sealed keys by what they open to ({@link sealedKeyEquals}). */
export function installSealedKeyEquality(): void {
  expect.addEqualityTesters([sealedKeyEquals]);
}
