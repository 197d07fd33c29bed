import { z } from "zod";

/** Who a key belongs to. */
export interface PrincipalRef {
  type: "operator" | "agent";
  id: number;
}

/** An operator account as stored: its key only as a hash. */
export interface OperatorRecord {
  id: number;
  name: string;
  email: string | null;
  keyHash: string;
  recoveryCodeHash: string;
  balanceSats: number;
  /** Withdrawals are refused until this instant (ms since epoch); null when never rotated. */
  cooldownUntilMs: number | null;
}

/** An agent as stored: its key only as a hash. */
export interface AgentRecord {
  id: number;
  operatorId: number;
  name: string;
  description: string | null;
  keyHash: string;
  balanceSats: number;
  budgetLimitSats: number | null;
  isActive: boolean;
  cooldownUntilMs: number | null;
}

/** A rotation reply kept for `request_id` replays, sealed with the credential that asked. */
export interface ReplayRecord {
  /** SHA-256 of action, credential hash and request_id. */
  id: string;
  /** The other request fields of the first call, so a reuse with different ones is refused. */
  paramsDigest: string;
  sealedReply: string;
  expiresAtMs: number;
}

/** Everything the sandbox knows. Raw keys and recovery codes are never part of it. */
export interface SandboxState {
  nextOperatorId: number;
  nextAgentId: number;
  operators: Map<number, OperatorRecord>;
  agents: Map<number, AgentRecord>;
  /** Key hash -> principal; a rotated-out key hash is removed at once. */
  keyIndex: Map<string, PrincipalRef>;
  /** Recovery code hash -> operator id. */
  recoveryIndex: Map<string, number>;
  replays: Map<string, ReplayRecord>;
}

/** An empty sandbox. */
export function createEmptyState(): SandboxState {
  return {
    nextOperatorId: 1,
    nextAgentId: 1,
    operators: new Map(),
    agents: new Map(),
    keyIndex: new Map(),
    recoveryIndex: new Map(),
    replays: new Map(),
  };
}

const hashSchema = z.string().regex(/^[0-9a-f]{64}$/);
const idSchema = z.number().int().positive();
const satsSchema = z.number().int().nonnegative();

const stateFileSchema = z.object({
  version: z.literal(1),
  nextOperatorId: idSchema,
  nextAgentId: idSchema,
  operators: z.array(
    z.object({
      id: idSchema,
      name: z.string(),
      email: z.string().nullable(),
      keyHash: hashSchema,
      recoveryCodeHash: hashSchema,
      balanceSats: satsSchema,
      cooldownUntilMs: z.number().nullable(),
    }),
  ),
  agents: z.array(
    z.object({
      id: idSchema,
      operatorId: idSchema,
      name: z.string(),
      description: z.string().nullable(),
      keyHash: hashSchema,
      balanceSats: satsSchema,
      budgetLimitSats: satsSchema.nullable(),
      isActive: z.boolean(),
      cooldownUntilMs: z.number().nullable(),
    }),
  ),
  replays: z.array(
    z.object({
      id: hashSchema,
      paramsDigest: z.string(),
      sealedReply: z.string(),
      expiresAtMs: z.number(),
    }),
  ),
});

/** The state as the JSON text of the data file. */
export function serializeState(state: SandboxState): string {
  return JSON.stringify({
    version: 1,
    nextOperatorId: state.nextOperatorId,
    nextAgentId: state.nextAgentId,
    operators: [...state.operators.values()],
    agents: [...state.agents.values()],
    replays: [...state.replays.values()],
  });
}

/**
 * Rebuilds the state from data file text, indexes included.
 * Throws an `Error` naming the file problem when the text is not a valid state file.
 */
export function deserializeState(text: string): SandboxState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error("sandbox data file is not valid JSON", { cause: error });
  }
  const parsed = stateFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`sandbox data file is not a valid state: ${z.prettifyError(parsed.error)}`);
  }
  const state = createEmptyState();
  state.nextOperatorId = parsed.data.nextOperatorId;
  state.nextAgentId = parsed.data.nextAgentId;
  for (const operator of parsed.data.operators) {
    state.operators.set(operator.id, operator);
    state.keyIndex.set(operator.keyHash, { type: "operator", id: operator.id });
    state.recoveryIndex.set(operator.recoveryCodeHash, operator.id);
  }
  for (const agent of parsed.data.agents) {
    state.agents.set(agent.id, agent);
    state.keyIndex.set(agent.keyHash, { type: "agent", id: agent.id });
  }
  for (const replay of parsed.data.replays) state.replays.set(replay.id, replay);
  return state;
}
