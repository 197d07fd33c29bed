import { z } from "zod";
import { COOLDOWN_MINUTES, type CooldownMinutes } from "./cooldowns.js";
import { RekeyError } from "./errors.js";

/** The largest id the faucet accepts: a signed 32-bit integer. */
export const MAX_ID = 2 ** 31 - 1;

/** A principal that holds a key: the operator of a profile, or one of its agents. */
export type Principal = { kind: "operator" } | { kind: "agent"; agentId: number };

export const OPERATOR: Principal = Object.freeze({ kind: "operator" });

/** The zod schema of an agent id: a positive integer up to 2^31-1. */
export const agentIdSchema = z
  .number({ error: "agent_id must be a number" })
  .int("agent_id must be an integer")
  .positive("agent_id must be positive")
  .max(MAX_ID, `agent_id must be at most ${MAX_ID}`);

/**
 * Builds an agent principal, validating the id.
 * @throws RekeyError INVALID_INPUT for anything but an integer in 1..2^31-1.
 */
export function agent(agentId: unknown): Principal {
  const parsed = agentIdSchema.safeParse(
    typeof agentId === "string" && /^\d+$/.test(agentId) ? Number(agentId) : agentId,
  );
  if (!parsed.success) {
    throw new RekeyError(
      "INVALID_INPUT",
      `Invalid agent id ${JSON.stringify(String(agentId)).slice(0, 40)}: ${parsed.error.issues[0]?.message ?? "invalid"}`,
      {
        hint: `Use a positive whole number up to ${MAX_ID}.`,
      },
    );
  }
  return { kind: "agent", agentId: parsed.data };
}

/** "operator" or "agent 7", for messages. */
export function principalLabel(principal: Principal): string {
  return principal.kind === "operator" ? "operator" : `agent ${principal.agentId}`;
}

/** "The operator" or "Agent 7": a label that starts a sentence. */
export function capitalized(label: string): string {
  return label === "operator" ? "The operator" : label.charAt(0).toUpperCase() + label.slice(1);
}

/** A stable string key: "operator" or "agent:7", used for locks, intents and maps. */
export function principalKey(principal: Principal): string {
  return principal.kind === "operator" ? "operator" : `agent:${principal.agentId}`;
}

/** Parses {@link principalKey} back. @throws RekeyError STORE_CORRUPT on anything else. */
export function parsePrincipalKey(key: string): Principal {
  if (key === "operator") return OPERATOR;
  const match = /^agent:(\d+)$/.exec(key);
  if (match) return agent(Number(match[1]));
  throw new RekeyError(
    "STORE_CORRUPT",
    `Unknown principal key ${JSON.stringify(key)} in the store`,
  );
}

export function samePrincipal(a: Principal, b: Principal): boolean {
  return principalKey(a) === principalKey(b);
}

/** Withdrawal cooldown a rotation starts: 60 minutes for an operator, 30 for an agent. */
export function cooldownMinutes(principal: Principal): CooldownMinutes {
  return COOLDOWN_MINUTES[principal.kind];
}
