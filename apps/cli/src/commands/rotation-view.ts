import {
  type RotationPlan,
  type RotationResult,
  rotationPlanView,
  rotationView,
} from "@rekey/core";

// The `--json` views of rotations are core's JSON vocabulary (docs/json-vocabulary.md), the
// shapes the MCP tools and the HTTP endpoint use too.

/** A completed rotation; the raw key (`api_key`) only when it was revealed (`--reveal`). */
export function rotationPayload(result: RotationResult): Record<string, unknown> {
  return rotationView(result, { revealKey: result.apiKey !== undefined });
}

/** A dry-run plan. */
export function planPayload(plan: RotationPlan): Record<string, unknown> {
  return rotationPlanView(plan);
}
