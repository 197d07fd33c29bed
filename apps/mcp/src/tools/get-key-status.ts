import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { agent, type KeyStatus } from "@rekey/core";
import { humanDuration, toolResult } from "../render.js";
import { agentIdInput, keyStatusOutput } from "../tool-schemas.js";
import type { ToolContext } from "./context.js";

function headline(status: KeyStatus): string {
  if (!status.hasKey) return `No key is held for ${status.label} in profile "${status.profile}".`;
  const age =
    status.keyAgeSeconds === undefined ? "" : `, ${humanDuration(status.keyAgeSeconds)} old`;
  const cooldown =
    status.cooldownRemainingSeconds > 0
      ? ` Withdrawal cooldown: ${humanDuration(status.cooldownRemainingSeconds)} left.`
      : " No withdrawal cooldown is running.";
  const pending = status.pendingRotation
    ? " A rotation is unfinished; the next call resolves it."
    : "";
  const schedule = status.schedule;
  const due = schedule
    ? schedule.overdue
      ? " Its scheduled rotation is OVERDUE: tell the user."
      : schedule.nextRotationAt === undefined
        ? ""
        : ` A scheduled rotation will replace it at ${schedule.nextRotationAt}.`
    : "";
  return `The ${status.label} key is ${status.fingerprint ?? "held"}${age}.${cooldown}${pending}${due}`;
}

/** Registers `get_key_status` (read-only). Failures become `isError` results. */
export function registerGetKeyStatus(server: McpServer, deps: ToolContext): void {
  server.registerTool(
    "get_key_status",
    {
      title: "Key status",
      description:
        "Show the fingerprint, age, last rotation, remaining withdrawal cooldown, any unfinished rotation and the next scheduled rotation (due_at) of this session's key, or of one agent's key (agent_id, operators only). Never shows the key itself.",
      inputSchema: agentIdInput,
      outputSchema: keyStatusOutput,
      annotations: { title: "Key status", readOnlyHint: true, openWorldHint: false },
    },
    async ({ agent_id }) => {
      try {
        const status = await deps.rekey.status(
          agent_id === undefined ? undefined : agent(agent_id),
        );
        const rotation = status.lastRotation;
        const pending = status.pendingRotation;
        return toolResult(headline(status), {
          principal: status.label,
          profile: status.profile,
          has_key: status.hasKey,
          key_source: status.keySource,
          fingerprint: status.fingerprint,
          name: status.name,
          saved_at: status.savedAt,
          key_age_seconds: status.keyAgeSeconds,
          last_rotation: rotation && {
            rotated_at: rotation.rotatedAt,
            request_id: rotation.requestId,
            old_fingerprint: rotation.oldFingerprint,
            new_fingerprint: rotation.newFingerprint,
            verified: rotation.verified,
            surface: rotation.surface,
          },
          cooldown_until: status.cooldownUntil,
          cooldown_remaining_seconds: status.cooldownRemainingSeconds,
          unfinished_rotation: pending && {
            request_id: pending.requestId,
            started_at: pending.startedAt,
            phase: pending.phase,
          },
          deliveries: status.deliveries?.map((target) => ({
            target: target.target,
            state: target.state,
            description: target.description,
            error:
              target.error === undefined
                ? undefined
                : `${target.error.message} (${target.error.code})`,
          })),
          due_at: status.schedule?.nextRotationAt,
          rotation_overdue: status.schedule?.overdue,
        });
      } catch (error) {
        return deps.failed("get_key_status", error);
      }
    },
  );
}
