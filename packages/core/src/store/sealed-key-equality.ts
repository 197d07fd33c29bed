import { expect } from "vitest";
import { isSealedKey, openKey } from "./encryption/sealed-key.js";

/**
 * A vitest equality tester: a key a read left sealed (`SealedKey`) equals the key it opens to,
 * and a copy of it (`structuredClone`) equals it when it holds the same ciphertext. Stores that
 * seal keys at rest hand them back sealed (`openKey` opens one), so "reads back what was
 * written" compares what each key opens to: a key that does not open, or opens to another key,
 * is not equal. Undefined (no opinion) when neither side is a sealed key. Throws nothing.
 */
export function sealedKeyEquals(a: unknown, b: unknown): boolean | undefined {
  if (!isSealedKey(a) && !isSealedKey(b)) return undefined;
  if (isSealedKey(a) && isSealedKey(b) && a.sealed === b.sealed && a.place === b.place) {
    return true;
  }
  try {
    const clear = (value: unknown) => (isSealedKey(value) ? openKey(value) : value);
    return clear(a) === clear(b);
  } catch {
    return false;
  }
}

/** Makes `toEqual` and friends compare sealed keys by what they open to ({@link sealedKeyEquals}). */
export function installSealedKeyEquality(): void {
  expect.addEqualityTesters([sealedKeyEquals]);
}
