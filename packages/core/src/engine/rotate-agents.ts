import type { DeliveryOutcome } from "../delivery/delivery-journal.js";
import { isRekeyError, RekeyError, toRekeyError } from "../errors.js";
import { agent } from "../principal.js";
import { mapLimited } from "./limited.js";
import type { AgentStatus, Rekey } from "./types.js";

/** The default number of agent rotations in flight at once: gentle on the faucet. */
export const DEFAULT_AGENT_ROTATION_CONCURRENCY = 4;
/** The most agent rotations in flight at once that `rotateAgents` accepts. */
export const MAX_AGENT_ROTATION_CONCURRENCY = 16;

/** Which of the operator's agents a bulk rotation rotates, and which it skips. */
export interface AgentRotationPlan {
  /** Every agent of the operator, as the faucet lists them. */
  agents: AgentStatus[];
  /** The agents to rotate: all of them with `force`, else those outside a cooldown. */
  toRotate: AgentStatus[];
  /**
   * The agents inside a cooldown (without `force`): rotated recently, for example by an
   * interrupted run, so rotating them again would only restart their withdrawal block.
   */
  skipped: AgentStatus[];
}

/** One agent's outcome in a bulk rotation. */
export interface AgentRotationOutcome {
  agentId: number;
  name: string;
  /** `already_rotated`: inside a cooldown, skipped (or rotated by someone else meanwhile). */
  result: "rotated" | "already_rotated" | "failed";
  oldFingerprint?: string | undefined;
  newFingerprint?: string | undefined;
  cooldownUntil?: string | undefined;
  error?: { code: string; message: string } | undefined;
  /** The new key, only with `reveal`. */
  apiKey?: string | undefined;
  deliveries?: DeliveryOutcome[] | undefined;
}

/** Options of {@link rotateAgents}. */
export interface RotateAgentsOptions {
  /** Rotate agents inside a cooldown too (restarting it). */
  force?: boolean;
  /** Return each new key (`apiKey`). */
  reveal?: boolean;
  /** Rotations in flight at once, 1-16; default 4. */
  concurrency?: number;
  /** The plan to carry out (one the caller showed and had confirmed); default: a fresh one. */
  plan?: AgentRotationPlan;
  /** Called after each agent's rotation ends, whatever its result (progress bars). */
  onRotated?: (outcome: AgentRotationOutcome) => void;
}

/**
 * Which agents {@link rotateAgents} would rotate: the faucet's list of the operator's agents,
 * split by cooldown. Changes nothing.
 * @throws RekeyError as `listAgents` (FORBIDDEN for an agent session, UPSTREAM_*, STORE_*)
 */
export async function planAgentRotation(
  rekey: Rekey,
  options: { force?: boolean } = {},
): Promise<AgentRotationPlan> {
  const agents = await rekey.listAgents();
  const inCooldown = (entry: AgentStatus) =>
    options.force !== true && entry.cooldownRemainingSeconds > 0;
  return {
    agents,
    toRotate: agents.filter((entry) => !inCooldown(entry)),
    skipped: agents.filter(inCooldown),
  };
}

/**
 * Rotates every agent of the operator through `rekey.rotateKey`, at most `concurrency` at a
 * time. Agents inside a cooldown are skipped (`already_rotated`) unless `force`, so running it
 * again after an interruption or a failure resumes: it rotates only what is left. One agent's
 * failure does not stop the others; it is reported in its outcome. Outcomes are sorted by
 * agent id.
 * @throws RekeyError INVALID_INPUT (concurrency out of range), or what planning throws
 */
export async function rotateAgents(
  rekey: Rekey,
  options: RotateAgentsOptions = {},
): Promise<AgentRotationOutcome[]> {
  const concurrency = options.concurrency ?? DEFAULT_AGENT_ROTATION_CONCURRENCY;
  if (
    !Number.isInteger(concurrency) ||
    concurrency < 1 ||
    concurrency > MAX_AGENT_ROTATION_CONCURRENCY
  ) {
    throw new RekeyError(
      "INVALID_INPUT",
      `concurrency ${String(concurrency)} must be 1 to ${MAX_AGENT_ROTATION_CONCURRENCY}`,
      { hint: `The default, ${DEFAULT_AGENT_ROTATION_CONCURRENCY}, is gentle on the faucet.` },
    );
  }
  const plan = options.plan ?? (await planAgentRotation(rekey, { force: options.force }));
  const rotated = await mapLimited(plan.toRotate, concurrency, async (entry) => {
    const outcome = await rotateAgent(rekey, entry, options);
    options.onRotated?.(outcome);
    return outcome;
  });
  const skipped = plan.skipped.map(
    (entry): AgentRotationOutcome => ({
      agentId: entry.id,
      name: entry.name,
      result: "already_rotated",
      newFingerprint: entry.fingerprint,
      cooldownUntil: entry.cooldownUntil,
    }),
  );
  return [...rotated, ...skipped].sort((a, b) => a.agentId - b.agentId);
}

async function rotateAgent(
  rekey: Rekey,
  entry: AgentStatus,
  options: RotateAgentsOptions,
): Promise<AgentRotationOutcome> {
  const base = { agentId: entry.id, name: entry.name };
  try {
    const result = await rekey.rotateKey({
      target: agent(entry.id),
      force: options.force === true,
      reveal: options.reveal === true,
    });
    return {
      ...base,
      result: "rotated",
      oldFingerprint: result.oldFingerprint,
      newFingerprint: result.newFingerprint,
      cooldownUntil: result.cooldownUntil,
      ...(result.apiKey === undefined ? {} : { apiKey: result.apiKey }),
      ...(result.deliveries === undefined ? {} : { deliveries: result.deliveries }),
    };
  } catch (error) {
    // Rotated by someone else between the listing and now.
    if (isRekeyError(error, "COOLDOWN_ACTIVE")) {
      return { ...base, result: "already_rotated", cooldownUntil: error.details.cooldownUntil };
    }
    const rekeyError = toRekeyError(error);
    return {
      ...base,
      result: "failed",
      error: { code: rekeyError.code, message: rekeyError.message },
    };
  }
}
