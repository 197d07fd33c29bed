import { createHash } from "node:crypto";
import { parseInvoice } from "./invoice.js";
import { type ActionResult, type ReplyBody, refuse, succeed } from "./replies.js";
import { type ActionInput, type ActionName, actionSchemas } from "./schemas.js";
import {
  generateApiKey,
  generateRecoveryCode,
  hashSecret,
  randomPaymentHash,
  seal,
  unseal,
} from "./secrets.js";
import type { AgentRecord, OperatorRecord, SandboxState } from "./state.js";

/** Withdrawal cooldown after an operator key is rotated or recovered. */
export const OPERATOR_COOLDOWN_MS = 60 * 60 * 1000;
/** Withdrawal cooldown after an agent key is rotated. */
export const AGENT_COOLDOWN_MS = 30 * 60 * 1000;
/** How long a `request_id` is remembered. */
export const REPLAY_WINDOW_MS = 24 * 60 * 60 * 1000;

/** What an action may read and change. */
export interface ActionContext {
  state: SandboxState;
  /** The sandbox clock's reading for this request. */
  nowMs: number;
  /** Honour `request_id` on rotations (the sandbox extension). */
  requestIdSupport: boolean;
  /** Moves the test clock; undefined when the sandbox runs on a real clock. */
  advanceClock: ((ms: number) => void) | undefined;
}

type Caller = { type: "operator"; record: OperatorRecord } | { type: "agent"; record: AgentRecord };

type Handler<A extends ActionName> = (
  input: ActionInput<A>,
  context: ActionContext,
) => ActionResult;

const handlers: { [A in ActionName]: Handler<A> } = {
  register(input, { state }) {
    const apiKey = generateApiKey();
    const recoveryCode = generateRecoveryCode();
    const operator: OperatorRecord = {
      id: state.nextOperatorId++,
      name: input.name ?? "AI Agent Operator",
      email: input.email ?? null,
      keyHash: hashSecret(apiKey),
      recoveryCodeHash: hashSecret(recoveryCode),
      balanceSats: 0,
      cooldownUntilMs: null,
    };
    state.operators.set(operator.id, operator);
    state.keyIndex.set(operator.keyHash, { type: "operator", id: operator.id });
    state.recoveryIndex.set(operator.recoveryCodeHash, operator.id);
    return succeed(
      { operator_id: operator.id, api_key: apiKey, recovery_code: recoveryCode },
      { mutated: true },
    );
  },

  whoami(input, { state }) {
    return withCaller(state, input.api_key, (caller) => {
      const { record } = caller;
      const common = { type: caller.type, id: record.id, name: record.name };
      if (caller.type === "operator") {
        const agentCount = [...state.agents.values()].filter(
          (agent) => agent.operatorId === record.id,
        ).length;
        return succeed({ ...common, balance_sats: record.balanceSats, agent_count: agentCount });
      }
      return succeed({
        ...common,
        balance_sats: caller.record.balanceSats,
        operator_id: caller.record.operatorId,
        budget_limit_sats: caller.record.budgetLimitSats,
      });
    });
  },

  get_balance(input, { state }) {
    return withCaller(state, input.api_key, ({ record }) =>
      succeed({ balance_sats: record.balanceSats }),
    );
  },

  create_agent(input, { state }) {
    return withOperator(state, input.api_key, (operator) => {
      const apiKey = generateApiKey();
      const agent: AgentRecord = {
        id: state.nextAgentId++,
        operatorId: operator.id,
        name: input.name,
        description: input.description ?? null,
        keyHash: hashSecret(apiKey),
        balanceSats: 0,
        budgetLimitSats: input.budget_limit_sats ?? null,
        isActive: true,
        cooldownUntilMs: null,
      };
      state.agents.set(agent.id, agent);
      state.keyIndex.set(agent.keyHash, { type: "agent", id: agent.id });
      return succeed({ agent_id: agent.id, api_key: apiKey, name: agent.name }, { mutated: true });
    });
  },

  list_agents(input, { state }) {
    return withOperator(state, input.api_key, (operator) =>
      succeed({
        agents: [...state.agents.values()]
          .filter((agent) => agent.operatorId === operator.id)
          .map((agent) => ({
            id: agent.id,
            name: agent.name,
            balance_sats: agent.balanceSats,
            is_active: agent.isActive,
          })),
      }),
    );
  },

  fund_agent(input, { state }) {
    return withOperator(state, input.api_key, (operator) => {
      const agent = ownAgent(state, operator, input.agent_id);
      if (!agent) return agentNotFound();
      if (input.amount_sats > operator.balanceSats) {
        return refuse("insufficient_balance", "Insufficient operator balance", {
          balance_sats: operator.balanceSats,
        });
      }
      if (
        agent.budgetLimitSats !== null &&
        agent.balanceSats + input.amount_sats > agent.budgetLimitSats
      ) {
        return refuse(
          "invalid_request",
          `Funding would take the agent above its budget limit of ${agent.budgetLimitSats} sats`,
        );
      }
      operator.balanceSats -= input.amount_sats;
      agent.balanceSats += input.amount_sats;
      return succeed(
        {
          operator_balance: operator.balanceSats,
          agent_balance: agent.balanceSats,
          transferred: input.amount_sats,
        },
        { mutated: true },
      );
    });
  },

  regenerate_operator_key(input, context) {
    return withReplay(context, "regenerate_operator_key", input.api_key, input.request_id, "", () =>
      withCaller(context.state, input.api_key, (caller) =>
        caller.type === "operator"
          ? rotateOperator(context, caller.record)
          : rotateAgent(context, caller.record),
      ),
    );
  },

  regenerate_agent_key(input, context) {
    const paramsDigest = `agent_id=${input.agent_id}`;
    return withReplay(
      context,
      "regenerate_agent_key",
      input.api_key,
      input.request_id,
      paramsDigest,
      () =>
        withOperator(context.state, input.api_key, (operator) => {
          const agent = ownAgent(context.state, operator, input.agent_id);
          return agent ? rotateAgent(context, agent) : agentNotFound();
        }),
    );
  },

  recover(input, context) {
    return withReplay(context, "recover", input.recovery_code, input.request_id, "", () => {
      const operatorId = context.state.recoveryIndex.get(hashSecret(input.recovery_code));
      const operator =
        operatorId === undefined ? undefined : context.state.operators.get(operatorId);
      if (!operator) return refuse("invalid_api_key", "Invalid recovery code");
      const rotation = rotateOperator(context, operator);
      const { api_key, cooldown_until } = rotation.body;
      return succeed(
        { operator_id: operator.id, api_key, cooldown_until, message: rotation.body.message },
        { mutated: true, rotated: true },
      );
    });
  },

  withdraw(input, { state, nowMs }) {
    return withCaller(state, input.api_key, ({ record }) => {
      if (record.cooldownUntilMs !== null && nowMs < record.cooldownUntilMs) {
        const secondsRemaining = Math.ceil((record.cooldownUntilMs - nowMs) / 1000);
        return refuse(
          "cooldown_active",
          `Withdrawals are blocked for ${secondsRemaining} more seconds after a key rotation`,
          {
            cooldown_until: new Date(record.cooldownUntilMs).toISOString(),
            seconds_remaining: secondsRemaining,
          },
        );
      }
      let amountSats = input.amount_sats;
      if (input.invoice !== undefined) {
        const invoice = parseInvoice(input.invoice);
        if (!invoice.valid) return refuse("invalid_request", invoice.reason);
        if (
          invoice.amountSats !== undefined &&
          amountSats !== undefined &&
          amountSats !== invoice.amountSats
        ) {
          return refuse("invalid_request", "amount_sats does not match the invoice amount");
        }
        amountSats = invoice.amountSats ?? amountSats;
        if (amountSats === undefined) {
          return refuse("invalid_request", "The invoice has no amount; send amount_sats too");
        }
      }
      if (amountSats === undefined) {
        return refuse("invalid_request", "withdraw needs an invoice or amount_sats");
      }
      if (amountSats > record.balanceSats) {
        return refuse("insufficient_balance", "Insufficient balance", {
          balance_sats: record.balanceSats,
        });
      }
      record.balanceSats -= amountSats;
      return succeed(
        {
          amount_sats: amountSats,
          fee_sats: 0,
          new_balance: record.balanceSats,
          payment_hash: randomPaymentHash(),
        },
        { mutated: true },
      );
    });
  },

  sandbox_credit(input, { state }) {
    return withOperator(state, input.api_key, (operator) => {
      operator.balanceSats += input.amount_sats;
      return succeed(
        { balance_sats: operator.balanceSats, credited: input.amount_sats },
        { mutated: true },
      );
    });
  },

  sandbox_advance_clock(input, { advanceClock, nowMs }) {
    if (!advanceClock) {
      return refuse(
        "forbidden",
        "sandbox_advance_clock needs a sandbox started with a test clock (--test-clock)",
      );
    }
    advanceClock(input.seconds * 1000);
    return succeed({ now: new Date(nowMs + input.seconds * 1000).toISOString() });
  },
};

/**
 * Validates `body` against the action's schema and runs it. Synchronous from start to end, so
 * a key is checked and swapped with nothing else running in between.
 */
export function runAction(action: ActionName, body: unknown, context: ActionContext): ActionResult {
  const parsed = actionSchemas[action].safeParse(body);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => issue.message);
    return refuse("invalid_request", issues.join("; "), { issues });
  }
  const handler = handlers[action] as Handler<ActionName>;
  return handler(parsed.data as ActionInput<ActionName>, context);
}

function findCaller(state: SandboxState, apiKey: string): Caller | undefined {
  const principal = state.keyIndex.get(hashSecret(apiKey));
  if (principal?.type === "operator") {
    const record = state.operators.get(principal.id);
    return record && { type: "operator", record };
  }
  if (principal?.type === "agent") {
    const record = state.agents.get(principal.id);
    return record && { type: "agent", record };
  }
  return undefined;
}

function withCaller(
  state: SandboxState,
  apiKey: string,
  act: (caller: Caller) => ActionResult,
): ActionResult {
  const caller = findCaller(state, apiKey);
  return caller ? act(caller) : refuse("invalid_api_key", "Invalid API key");
}

function withOperator(
  state: SandboxState,
  apiKey: string,
  act: (operator: OperatorRecord) => ActionResult,
): ActionResult {
  return withCaller(state, apiKey, (caller) =>
    caller.type === "operator"
      ? act(caller.record)
      : refuse("forbidden", "This action needs an operator key, not an agent key"),
  );
}

/** The operator's agent with this id; another operator's agent is as absent as a missing one. */
function ownAgent(
  state: SandboxState,
  operator: OperatorRecord,
  agentId: number,
): AgentRecord | undefined {
  const agent = state.agents.get(agentId);
  return agent?.operatorId === operator.id ? agent : undefined;
}

function agentNotFound(): ActionResult {
  return refuse("not_found", "Agent not found");
}

function rotateOperator(context: ActionContext, operator: OperatorRecord): ActionResult {
  const apiKey = swapKey(context.state, operator, "operator");
  operator.cooldownUntilMs = context.nowMs + OPERATOR_COOLDOWN_MS;
  return rotationReply(apiKey, operator.cooldownUntilMs, OPERATOR_COOLDOWN_MS / 60_000);
}

function rotateAgent(context: ActionContext, agent: AgentRecord): ActionResult {
  const apiKey = swapKey(context.state, agent, "agent");
  agent.cooldownUntilMs = context.nowMs + AGENT_COOLDOWN_MS;
  return rotationReply(apiKey, agent.cooldownUntilMs, AGENT_COOLDOWN_MS / 60_000);
}

/** Issues a new key and forgets the old one in the same step: there is no overlap window. */
function swapKey(
  state: SandboxState,
  record: OperatorRecord | AgentRecord,
  type: "operator" | "agent",
): string {
  const apiKey = generateApiKey();
  state.keyIndex.delete(record.keyHash);
  record.keyHash = hashSecret(apiKey);
  state.keyIndex.set(record.keyHash, { type, id: record.id });
  return apiKey;
}

function rotationReply(apiKey: string, cooldownUntilMs: number, minutes: number): ActionResult {
  return succeed(
    {
      api_key: apiKey,
      message: `API key regenerated. The old key no longer works. Withdrawals are blocked for ${minutes} minutes.`,
      cooldown_until: new Date(cooldownUntilMs).toISOString(),
    },
    { mutated: true, rotated: true },
  );
}

/**
 * The `request_id` extension: the first successful reply is kept, sealed with the credential
 * that asked, and a repeat with the same credential and request_id within 24 hours gets it
 * back without rotating again.
 */
function withReplay(
  context: ActionContext,
  action: ActionName,
  credential: string,
  requestId: string | undefined,
  paramsDigest: string,
  rotate: () => ActionResult,
): ActionResult {
  if (!context.requestIdSupport || requestId === undefined) return rotate();
  const { state, nowMs } = context;
  for (const [id, replay] of state.replays) {
    if (replay.expiresAtMs <= nowMs) state.replays.delete(id);
  }
  const replayId = createHash("sha256")
    .update(`${action}\0${hashSecret(credential)}\0${requestId}`)
    .digest("hex");
  const earlier = state.replays.get(replayId);
  if (earlier) {
    if (earlier.paramsDigest !== paramsDigest) {
      return refuse("invalid_request", "request_id was already used with different parameters");
    }
    const replyText = unseal(credential, earlier.sealedReply);
    if (replyText === undefined) return refuse("internal", "Stored reply could not be opened");
    return {
      status: 200,
      body: JSON.parse(replyText) as ReplyBody,
      mutated: false,
      rotated: false,
    };
  }
  const result = rotate();
  if (result.body.success !== true) return result;
  const body = { ...result.body, request_id: requestId };
  state.replays.set(replayId, {
    id: replayId,
    paramsDigest,
    sealedReply: seal(credential, JSON.stringify(body)),
    expiresAtMs: nowMs + REPLAY_WINDOW_MS,
  });
  return { ...result, body };
}
