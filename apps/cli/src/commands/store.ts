import { type MasterKey, parseMasterKey, RekeyError, readKeyFile, rekeyMaster } from "@rekey/core";
import type { CommandContext } from "../context.js";

/**
 * `rekey store rekey-master --new-key SOURCE`: seals every stored key again under a new master
 * key. The key itself never goes on the command line: SOURCE names where it is.
 * @throws RekeyError INVALID_INPUT (a source it does not understand); STORE_LOCKED (the new
 *   key is not a key, or the current one does not open the store); CONFIG_INVALID; STORE_*
 */
export async function runStoreRekeyMaster(
  context: CommandContext,
  options: Record<string, unknown>,
): Promise<void> {
  const newKey = await newKeyFrom(String(options.newKey ?? ""), context.deps.env);
  const result = await context.withRekey(({ store }) => rekeyMaster(store, newKey, "cli"));
  const { colors } = context.output;
  context.output.result(
    "store rekey-master",
    {
      key_id: result.keyId,
      ...(result.previousKeyId === undefined ? {} : { previous_key_id: result.previousKeyId }),
      records: result.records,
      ...(result.keptAt === undefined ? {} : { kept_at: result.keptAt }),
    },
    () =>
      [
        `${colors.green("re-keyed")} ${result.records} record(s) under master key ${result.keyId}${result.previousKeyId ? ` (was ${result.previousKeyId})` : ""}`,
        result.keptAt === undefined
          ? "Now give rekey the new key (REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD) everywhere the store is used; the old key no longer opens it."
          : `The new key is in ${result.keptAt}; back it up, and delete copies of the old one.`,
      ].join("\n"),
  );
}

async function newKeyFrom(
  source: string,
  env: Record<string, string | undefined>,
): Promise<MasterKey | "generate"> {
  if (source === "generate") return "generate";
  if (source.startsWith("file:")) {
    const path = source.slice("file:".length);
    const key = await readKeyFile(path);
    if (key === undefined) throw new RekeyError("INVALID_INPUT", `No key file at ${path}`);
    return key;
  }
  if (source.startsWith("env:")) {
    const name = source.slice("env:".length);
    const value = env[name];
    if (!value) throw new RekeyError("INVALID_INPUT", `The variable ${name} is not set`);
    return parseMasterKey(value, name);
  }
  throw new RekeyError("INVALID_INPUT", "--new-key takes file:PATH, env:VARIABLE or generate", {
    hint: "The key itself never goes on the command line.",
  });
}
