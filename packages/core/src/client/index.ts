export {
  backoffDelayMs,
  DEFAULT_RETRY,
  parseRetryAfter,
  type RetryOptions,
  type Sleep,
} from "./backoff.js";
export { API_URL_ENV_VARS, DEFAULT_API_URL, resolveBaseUrl, validateBaseUrl } from "./base-url.js";
export {
  ERROR_TEXT_RULES,
  errorCodeFromText,
  FAUCET_CODE_MAP,
  faucetFailureError,
} from "./error-mapping.js";
export {
  type AgentSummary,
  type CallOptions,
  type CreateAgentResult,
  createFaucetClient,
  type FaucetClient,
  type FaucetClientOptions,
  type FaucetReply,
  type FundAgentResult,
  type RawCallOptions,
  type RecoverResult,
  type RegisterResult,
  type RotationReply,
  type WhoamiResult,
  type WithdrawResult,
} from "./faucet-client.js";
export { MAX_UPSTREAM_NAME, sanitizeUpstreamText } from "./reply-schemas.js";
export { closeAllDispatchers, sharedDispatcherCount } from "./transport.js";
