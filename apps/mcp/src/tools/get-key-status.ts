import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  agent,
  formatDuration,
  isRekeyError,
  type KeyStatus,
  keyStatusView,
  RekeyError,
} from "@rekey/core";
import { toolResult } from "../render.js";
import { keyStatusOutput, statusInput } from "../tool-schemas.js";
import { refuseUnexpectedArguments } from "../unexpected-arguments.js";
import type { ToolContext } from "./context.js";

function headline(status: KeyStatus): string {
  if (!status.hasKey && status.keyLost)
    return `KEY_LOST: the ${status.label} key ${status.keyLost.oldFingerprint} was rotated and its successor never reached the store. ${status.keyLost.recovery}`;
  if (!status.hasKey) return `No key is held for ${status.label} in profile "${status.profile}".`;
  const age =
    status.keyAgeSeconds === undefined ? "" : `, ${formatDuration(status.keyAgeSeconds)} old`;
  const cooldown =
    status.cooldownRemainingSeconds > 0
      ? ` Withdrawal cooldown: ${formatDuration(status.cooldownRemainingSeconds)} left.`
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
        "Show the fingerprint, age, last rotation, remaining withdrawal cooldown, any unfinished rotation and the scheduled rotation (schedule.next_rotation_at) of this session's key, or of one agent's key (agent_id, operators only). Never shows the key itself.",
      inputSchema: statusInput,
      outputSchema: keyStatusOutput,
      annotations: { title: "Key status", readOnlyHint: true, openWorldHint: false },
    },
    async ({ agent_id, ...others }) => {
      try {
        refuseUnexpectedArguments(
          "get_key_status",
          ["agent_id"],
          others,
          "Call it again with agent_id (an agent's key, operators only) or no arguments at all (this session's own key).",
        );
        const status = await deps.rekey.status(
          agent_id === undefined ? undefined : agent(agent_id),
        );
        return toolResult(headline(status), keyStatusView(status));
      } catch (error) {
        return deps.failed("get_key_status", asStatusRefusal(error));
      }
    },
  );
}

/**
 * Core's status refusal (an agent session asking for another principal's status) does not say
 * which operation it refused, and the model's hint would otherwise be the rotation's ("omit
 * agent_id to rotate"): it is marked as a status read here, where that is known.
 */
function asStatusRefusal(error: unknown): unknown {
  if (!isRekeyError(error, "FORBIDDEN") || error.details.operation !== undefined) return error;
  return new RekeyError("FORBIDDEN", error.message, {
    ...(error.hint === undefined ? {} : { hint: error.hint }),
    details: { ...error.details, operation: "status" },
    cause: error,
  });
}
