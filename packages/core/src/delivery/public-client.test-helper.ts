import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * How the public `lightning-wallet-mcp` server and `lw` CLI pick their key at startup, as its
 * `src/credentials.ts` does it (loadCredentials + activeStoredKey): LIGHTNING_WALLET_API_KEY
 * first; else `$LIGHTNING_WALLET_HOME/credentials.json` (an empty variable counts as unset),
 * which it ignores unless `version` is 1 and `active` is "operator" or "agent"; then the active
 * entry's `api_key`, else whichever entry has one. The tests hold our files to this reader.
 */
export function publicClientKey(
  env: Record<string, string | undefined>,
  home: string,
): { apiKey: string; type: "operator" | "agent" } | null {
  if (env.LIGHTNING_WALLET_API_KEY)
    return { apiKey: env.LIGHTNING_WALLET_API_KEY, type: "operator" };
  const dir = env.LIGHTNING_WALLET_HOME || join(home, ".lightning-wallet");
  let parsed: Record<string, { api_key?: string } | string | number | undefined>;
  try {
    parsed = JSON.parse(readFileSync(join(dir, "credentials.json"), "utf8"));
  } catch {
    return null;
  }
  if (parsed?.version !== 1) return null;
  if (parsed.active !== "operator" && parsed.active !== "agent") return null;
  const entry = parsed[parsed.active] as { api_key?: string } | undefined;
  if (entry?.api_key) return { apiKey: entry.api_key, type: parsed.active };
  const operator = parsed.operator as { api_key?: string } | undefined;
  const agentEntry = parsed.agent as { api_key?: string } | undefined;
  if (operator?.api_key) return { apiKey: operator.api_key, type: "operator" };
  if (agentEntry?.api_key) return { apiKey: agentEntry.api_key, type: "agent" };
  return null;
}
