export { AGENT_COOLDOWN_MS, OPERATOR_COOLDOWN_MS, REPLAY_WINDOW_MS } from "./actions.js";
export { type Clock, createTestClock, systemClock, type TestClock } from "./clock.js";
export { FAULT_KINDS, type FaultKind, type FaultSpec, parseFaultSpec } from "./faults.js";
export {
  createSandboxHandler,
  type RateLimit,
  type ReplyRewriter,
  type RewrittenReply,
  type SandboxHandler,
  type SandboxHandlerOptions,
  type SandboxLogger,
  type SandboxStats,
} from "./handler.js";
export { FAILURE_CODES, type FailureCode } from "./replies.js";
export { ACTION_NAMES, type ActionName, LIMITS } from "./schemas.js";
export { API_KEY_PATTERN } from "./secrets.js";
export { type RunningSandbox, type SandboxOptions, startSandbox } from "./server.js";
export type { AgentRecord, OperatorRecord, PrincipalRef, SandboxState } from "./state.js";
