import { z } from "zod";
import { RekeyError } from "./errors.js";
import { lazily } from "./lazily.js";

/**
 * The credentials file kept by the public `lightning-wallet-mcp` server and `lw` CLI
 * (`$LIGHTNING_WALLET_HOME/credentials.json`, default `~/.lightning-wallet/credentials.json`).
 */
// Built on first use: only an import or a delivery to that file reads it.
const fileSchema = lazily(() => {
  const entrySchema = z.object({
    api_key: z.string().min(8).max(512),
    id: z.union([z.number().int(), z.string()]).optional().nullable(),
    name: z.string().max(200).optional().nullable(),
    recovery_code: z.string().optional().nullable(),
    saved_at: z.string().optional().nullable(),
  });

  return z.object({
    version: z.literal(1),
    api_url: z.string().optional().nullable(),
    active: z.enum(["operator", "agent"]).optional().nullable(),
    operator: entrySchema.optional().nullable(),
    agent: entrySchema.optional().nullable(),
  });
});

export interface LightningWalletCredentials {
  active?: "operator" | "agent" | undefined;
  operator?: { apiKey: string; name?: string | undefined } | undefined;
  agent?: { apiKey: string; name?: string | undefined } | undefined;
  /** True when the file also holds a recovery code (rekey never stores one). */
  hasRecoveryCode: boolean;
  /** The faucet URL the client saved with the keys (`api_url`), if any. */
  apiUrl?: string | undefined;
}

/** Where the public client keeps its credentials. */
export function lightningWalletCredentialsPath(
  env: Record<string, string | undefined>,
  home: string,
): string {
  // An empty LIGHTNING_WALLET_HOME counts as unset, as in the client (`||`, not `??`).
  return `${env.LIGHTNING_WALLET_HOME || `${home}/.lightning-wallet`}/credentials.json`;
}

/**
 * Parses that file's JSON. Keys are returned raw for `login(key, { source: "import" })`.
 * @throws RekeyError INVALID_INPUT for anything else than that format (never echoing a key).
 */
export function parseLightningWalletCredentials(json: unknown): LightningWalletCredentials {
  const parsed = fileSchema().safeParse(json);
  if (!parsed.success) {
    throw new RekeyError("INVALID_INPUT", "Not a lightning-wallet credentials file (version 1)", {
      details: {
        issues: parsed.error.issues.map(
          (issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`,
        ),
      },
    });
  }
  const { operator, agent, active, api_url } = parsed.data;
  if (!operator && !agent)
    throw new RekeyError("INVALID_INPUT", "The lightning-wallet credentials file holds no key");
  return {
    active: active ?? undefined,
    operator: operator ? { apiKey: operator.api_key, name: operator.name ?? undefined } : undefined,
    agent: agent ? { apiKey: agent.api_key, name: agent.name ?? undefined } : undefined,
    hasRecoveryCode: Boolean(operator?.recovery_code),
    apiUrl: api_url || undefined,
  };
}
