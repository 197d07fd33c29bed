import { lstat, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { DEFAULT_API_URL } from "../client/base-url.js";
import { RekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { currentUid } from "../store/file-io.js";
import { faucetIdOf } from "../store/record-ids.js";
import type { DeliveryEnvironment, DeliveryPayload } from "./delivery-payload.js";
import {
  inspectTargetFile,
  readTargetFile,
  replaceTargetFile,
  targetIoError,
} from "./target-file.js";

/**
 * The `lightning-wallet` target: the credentials file of the public `lightning-wallet-mcp`
 * server and `lw` CLI (`$LIGHTNING_WALLET_HOME/credentials.json`). Its format, as the client's
 * `credentials.ts` reads and writes it: `{ version: 1, api_url?, active: "operator"|"agent",
 * operator?: { api_key, id?, name?, recovery_code?, saved_at }, agent?: {...} }`, written as
 * `JSON.stringify(data, null, 2)` plus a newline. The client refuses a file without a valid
 * `active`, and holds one agent.
 *
 * Only the principal's own entry changes (`api_key`, `saved_at`); `active`, the other entry,
 * a recovery code and fields this rekey does not know are kept as they are.
 */

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function refuse(path: string, why: string, hint: string): RekeyError {
  return new RekeyError("CONFIG_INVALID", `Refusing to deliver to ${path}: ${why}`, {
    hint,
    details: { path },
  });
}

/** The numeric id in a record principal ("agent:7" → 7), if any. */
function idOf(principal: string): number | undefined {
  const id = principal.split(":")[1];
  return id === undefined ? undefined : Number(id);
}

/** Creates the client's directory (0700) when missing; refuses a link, a non-directory, an open one. */
async function ensureClientDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw targetIoError("create the directory", dir, error);
  }
  const stats = await lstat(dir).catch((error: unknown) => {
    throw targetIoError("inspect", dir, error);
  });
  if (stats.isSymbolicLink()) throw refuse(dir, "it is a symbolic link", "Use the real directory.");
  if (!stats.isDirectory())
    throw refuse(dir, "it is not a directory", "Name the credentials file.");
  const uid = currentUid();
  if (uid !== undefined && stats.uid !== uid)
    throw refuse(dir, `it is owned by uid ${stats.uid}, not this user`, "Run as its owner.");
  if ((stats.mode & 0o077) !== 0)
    throw refuse(dir, `it has mode ${(stats.mode & 0o777).toString(8)}`, `chmod 700 ${dir}`);
}

/**
 * Refuses an entry whose key is not known as the principal's: the optional `id` alone cannot
 * tell (the client may leave it out), and overwriting another account's live key loses it
 * when the file was its only copy. Only fingerprints are named, never the key.
 */
function refuseAnotherKey(
  path: string,
  slot: string,
  existingKey: unknown,
  payload: DeliveryPayload,
): void {
  if (typeof existingKey !== "string" || existingKey === "") return;
  const fp = fingerprint(existingKey);
  if (fp === payload.fingerprint || payload.heldFingerprints?.includes(fp)) return;
  const owner = payload.keyOwners?.[fp];
  if (owner !== undefined) {
    throw refuse(
      path,
      `its ${slot} entry holds the key of ${owner} (${fp}), not ${payload.principal}'s; overwriting it would lose that key (it is delivered with --as ${owner})`,
      `Deliver ${owner}'s key to it instead (rekey --as ${owner} deliver add lightning-wallet ${path}), and ${payload.principal}'s to a file of its own (LIGHTNING_WALLET_HOME per principal).`,
    );
  }
  throw refuse(
    path,
    `its ${slot} entry holds a key rekey does not know as ${payload.principal}'s (${fp}); overwriting it could lose another account's key (import the file first to tell whose it is)`,
    `Import the file first (rekey import lightning-wallet --file ${path}) so rekey knows whose key it is, or remove the ${slot} entry if that key is no longer used.`,
  );
}

/**
 * The new file content: `current` (parsed, or undefined for a new file) with the principal's
 * entry holding the new key.
 * @throws RekeyError CONFIG_INVALID when the file is not the client's format, or its entry
 *   belongs to another operator or agent (by its `id`, or by a key not known as the
 *   principal's: overwriting it would lose that key).
 */
export function updatedLightningWalletFile(
  path: string,
  current: unknown,
  payload: DeliveryPayload,
  now: string,
): Json {
  const slot = payload.principal.startsWith("agent") ? "agent" : "operator";
  const id = idOf(payload.principal);
  if (current === undefined) {
    const entry: Json = { api_key: payload.key };
    if (id !== undefined) entry.id = id;
    if (payload.name !== undefined) entry.name = payload.name;
    entry.saved_at = now;
    const file: Json = { version: 1 };
    if (payload.faucet !== faucetIdOf(DEFAULT_API_URL)) file.api_url = payload.faucet;
    file.active = slot;
    file[slot] = entry;
    return file;
  }
  if (!isObject(current) || current.version !== 1) {
    throw refuse(
      path,
      "it is not a lightning-wallet credentials file (version 1)",
      "Fix or remove the file; rekey does not overwrite what it cannot read.",
    );
  }
  const existing = current[slot];
  if (existing !== undefined && existing !== null && !isObject(existing)) {
    throw refuse(path, `its "${slot}" entry is not an object`, "Fix or remove the file.");
  }
  const existingId = existing?.id;
  if (
    id !== undefined &&
    existingId !== undefined &&
    existingId !== null &&
    Number(existingId) !== id
  ) {
    throw refuse(
      path,
      `its ${slot} entry belongs to ${slot} ${String(existingId)}, not ${slot} ${id}`,
      "Deliver each principal to its own file (set LIGHTNING_WALLET_HOME per agent).",
    );
  }
  refuseAnotherKey(path, slot, existing?.api_key, payload);
  const entry: Json = existing ? { ...existing } : {};
  entry.api_key = payload.key;
  if (entry.id === undefined && id !== undefined) entry.id = id;
  if (entry.name === undefined && payload.name !== undefined) entry.name = payload.name;
  entry.saved_at = now;
  const file: Json = { ...current, [slot]: entry };
  // The client ignores a file without a valid `active`: one that had none now names this key.
  if (file.active !== "operator" && file.active !== "agent") file.active = slot;
  return file;
}

/**
 * Writes the key into a lightning-wallet credentials file: atomic, fsynced, 0600 in a 0700
 * directory (created when missing, as the client does).
 * @throws RekeyError CONFIG_INVALID (a link, a directory, open to others, not that format,
 *   another principal's entry); STORE_UNAVAILABLE (unwritable, disk full).
 */
export async function deliverToLightningWallet(
  path: string,
  payload: DeliveryPayload,
  environment: DeliveryEnvironment,
): Promise<void> {
  await ensureClientDir(dirname(path));
  const stats = await inspectTargetFile(path, 0o077);
  let current: unknown;
  if (stats !== undefined) {
    const text = await readTargetFile(path);
    try {
      current = JSON.parse(text);
    } catch {
      throw refuse(
        path,
        "it is not valid JSON",
        "Fix or remove the file; rekey will not overwrite it.",
      );
    }
  }
  const now = new Date(environment.clock.now()).toISOString();
  const file = updatedLightningWalletFile(path, current, payload, now);
  await replaceTargetFile(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
}
