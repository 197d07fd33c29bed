import { createHash } from "node:crypto";
import type { Rekey } from "@rekey/core";

/** A stable hash of the validated body and the token it came with, for Idempotency-Key. */
export function idempotencyHash(body: Record<string, unknown>, tokenName: string): string {
  const canonical = Object.keys(body)
    .filter((name) => body[name] !== undefined)
    .sort()
    .map((name) => [name, body[name]]);
  return createHash("sha256")
    .update(JSON.stringify({ body: canonical, token: tokenName }))
    .digest("hex");
}

/**
 * Runs `run` once per (token, Idempotency-Key): a repeat with the same body gets the first
 * answer back (`replayed`), one with another body is refused by core (422, see problem.ts).
 * Without a key, or for a dry run (which changes nothing, so repeating it is harmless), `run`
 * simply runs: it neither claims nor stores a slot. Slots are the token's own, and capped per
 * token. Core remembers the body only; the status is HTTP's: a remembered outcome is a
 * successful rotation, answered 200 whether fresh or replayed.
 */
export async function answerOnce<T>(options: {
  rekey: Rekey;
  idempotencyKey: string | undefined;
  /** False for requests that change nothing (dry runs). */
  changesState: boolean;
  body: Record<string, unknown>;
  tokenName: string;
  maxRecords: number;
  run: (attempt?: { requestId: string }) => Promise<T>;
}): Promise<{ status: 200; body: T; replayed: boolean }> {
  const { idempotencyKey, run } = options;
  if (idempotencyKey === undefined || !options.changesState) {
    return { status: 200, body: await run(), replayed: false };
  }
  const { result, replayed } = await options.rekey.withIdempotency(
    idempotencyKey,
    idempotencyHash(options.body, options.tokenName),
    run,
    { scope: options.tokenName, maxRecords: options.maxRecords },
  );
  return { status: 200, body: result, replayed };
}
