import { expect } from "vitest";

/**
 * Everything the suite's programs printed or logged: every child's stdout and stderr, every
 * error the in-process calls produced, the stores' audit logs. The secret scan reads it all.
 */
const entries: Array<{ source: string; text: string }> = [];

/** Records text a program printed or a store kept. Throws nothing. */
export function record(source: string, text: string): void {
  if (text !== "") entries.push({ source, text });
}

/** A raw faucet key or recovery code: `lf_`/`lfr_` and 43 base64url characters. */
export const RAW_KEY = /lfr?_[A-Za-z0-9_-]{43}/;

/** Fails naming the first recorded text that holds a raw key (the key itself is not shown). */
export function expectNoRawKeyRecorded(): void {
  const leaks = entries.filter((entry) => RAW_KEY.test(entry.text)).map((entry) => entry.source);
  expect(leaks, "sources whose output held a raw key").toEqual([]);
}

/** How many texts and characters were scanned, for the run's summary. */
export function transcriptSize(): { texts: number; chars: number } {
  return {
    texts: entries.length,
    chars: entries.reduce((sum, entry) => sum + entry.text.length, 0),
  };
}
