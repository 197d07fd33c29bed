import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  agent,
  COOLDOWN_MINUTES,
  principalKey,
  type RotationResult,
  rotationView,
} from "@rekey/core";
import { toolResult } from "../render.js";
import { rotateInput, rotateOutput } from "../tool-schemas.js";
import { refuseUnexpectedArguments } from "../unexpected-arguments.js";
import type { ToolContext } from "./context.js";

// Same name, input and facts as the public lightning-wallet-mcp tool, plus what rekey does
// differently: the key is stored, not returned.
const DESCRIPTION = [
  "Generate a new API key, invalidating the old one immediately (there is no overlap).",
  `For operators: triggers a ${COOLDOWN_MINUTES.operator}-min withdrawal cooldown. For agents: ${COOLDOWN_MINUTES.agent}-min cooldown.`,
  "The new key is saved to the credential store before anything uses it, and this session switches to it;",
  "the result shows its fingerprint, never the key.",
  "agent_id (operators only) rotates one of the operator's agents: its key is stored under that agent",
  "and this session stays the operator. Omit agent_id to rotate this session's own key.",
  "A second rotation inside the cooldown is refused with the time remaining.",
  "A scheduled rotation may exist (rekey policy): get_key_status shows its schedule.next_rotation_at; rotating now",
  "also resets that schedule, so there is rarely a reason to rotate just before it.",
].join(" ");

function messageFor(result: RotationResult, switched: boolean, revealed: boolean): string {
  const parts = [
    result.shared
      ? `The ${result.label} key had just been rotated by another caller; this is that rotation.`
      : `Rotated the ${result.label} key; the old key stopped working immediately.`,
    switched
      ? `The new key ${result.newFingerprint} is stored and this session now uses it.`
      : `The new key ${result.newFingerprint} is stored under ${result.label}; this session keeps its own key.`,
    `Withdrawals by ${result.label} are blocked until ${result.cooldownUntil} (${result.cooldownMinutes} minutes).`,
  ];
  if (!result.verified) {
    parts.push("The new key is stored but could not be verified yet: call whoami to check it.");
  }
  const failed = result.deliveries?.filter((delivery) => delivery.status === "failed") ?? [];
  if (failed.length > 0) {
    parts.push(
      `Delivering the new key failed for ${failed.map((delivery) => delivery.target).join(", ")}: they still hold the old key until \`rekey deliver retry\` succeeds (rekey retries by itself).`,
    );
  }
  if (revealed) {
    parts.push("api_key holds the raw key because this server reveals keys: treat it as a secret.");
  }
  return parts.join(" ");
}

/** Registers `rotate_api_key`. Failures become `isError` results (any core error code). */
export function registerRotateApiKey(server: McpServer, deps: ToolContext): void {
  server.registerTool(
    "rotate_api_key",
    {
      title: "Rotate API key",
      description: DESCRIPTION,
      inputSchema: rotateInput,
      outputSchema: rotateOutput,
      annotations: {
        title: "Rotate API key",
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async ({ agent_id, ...others }) => {
      try {
        refuseUnexpectedArguments(
          "rotate_api_key",
          ["agent_id"],
          others,
          "rotate_api_key has no dry run; `rekey rotate --dry-run` shows the plan.",
        );
        const target = agent_id === undefined ? undefined : agent(agent_id);
        // `force` is deliberately not offered: a model must not restart a cooldown.
        const result = await deps.rekey.rotateKey({ target, reveal: deps.revealKeys });
        // The session acts as the profile's active principal; core moves it to the new key
        // only when that principal was the one rotated.
        const active = await deps.rekey.activePrincipal();
        const switched =
          active !== undefined && principalKey(active) === principalKey(result.principal);
        const revealed = deps.revealKeys && result.apiKey !== undefined;
        deps.log(
          `rotate_api_key: rotated ${result.label} -> ${result.newFingerprint} (verified ${result.verified})`,
        );
        const message = messageFor(result, switched, revealed);
        return toolResult(message, {
          ...rotationView(result, { revealKey: revealed }),
          session_switched: switched,
          message,
        });
      } catch (error) {
        return deps.failed("rotate_api_key", error);
      }
    },
  );
}
