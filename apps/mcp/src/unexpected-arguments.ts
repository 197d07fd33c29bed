import { RekeyError } from "@rekey/core";

/**
 * Refuses arguments a tool does not take instead of dropping them: a model that passes
 * `dry_run` to rotate_api_key, `agentId` to get_key_status or `agent_id` to whoami must not get
 * an answer (or a rotation) it takes for the one it asked for. Names are the caller's text:
 * quoted and cut short.
 * @throws RekeyError INVALID_INPUT (`details.unexpected`, `details.accepted`) when `others`
 *   holds any argument.
 */
export function refuseUnexpectedArguments(
  tool: string,
  accepted: readonly string[],
  others: Record<string, unknown>,
  hint: string,
): void {
  const unexpected = Object.keys(others).map((name) => name.slice(0, 40));
  if (unexpected.length === 0) return;
  const quoted = unexpected.map((name) => JSON.stringify(name)).join(", ");
  throw new RekeyError(
    "INVALID_INPUT",
    accepted.length === 0
      ? `${tool} takes no arguments; not ${quoted}`
      : `${tool} takes only ${accepted.join(", ")}; not ${quoted}`,
    { hint, details: { unexpected, accepted: [...accepted] } },
  );
}
