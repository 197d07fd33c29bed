import type { z } from "@hono/zod-openapi";
import {
  type AgentStatus,
  agentListView,
  type CurrentKey,
  type KeyStatus,
  keyStatusView,
  principalLabel,
  principalView,
  type RotationPlan,
  type RotationResult,
  rotationPlanView,
  rotationView,
} from "@rekey/core";
import type {
  agentsResponseSchema,
  currentKeyResponseSchema,
  rotateResponseSchema,
  statusResponseSchema,
} from "./schemas.js";

// Core results in core's JSON vocabulary (docs/json-vocabulary.md), the shapes the CLI's --json
// and the MCP tools use too. Only `presentCurrentKey` carries a raw key.

/** A rotation result or dry-run plan, with fingerprints only (never `api_key`). */
export function presentRotation(
  outcome: RotationResult | RotationPlan,
): z.infer<typeof rotateResponseSchema> {
  return outcome.dryRun ? rotationPlanView(outcome) : rotationView(outcome, { revealKey: false });
}

/** Core's `KeyStatus` for `GET /v1/status`. */
export function presentStatus(status: KeyStatus): z.infer<typeof statusResponseSchema> {
  return keyStatusView(status);
}

/** Core's agent list for `GET /v1/agents`. */
export function presentAgents(agents: AgentStatus[]): z.infer<typeof agentsResponseSchema> {
  return agentListView(agents);
}

/** The one presenter that carries a raw key: only for `read_key` tokens, sent `no-store`. */
export function presentCurrentKey(current: CurrentKey): z.infer<typeof currentKeyResponseSchema> {
  return {
    principal: principalView(current.principal),
    label: principalLabel(current.principal),
    fingerprint: current.fingerprint,
    api_key: current.key,
  };
}
