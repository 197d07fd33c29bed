/**
 * The faucet's withdrawal cooldowns, in minutes: a rotation (or a recovery) of an operator key
 * blocks that operator's withdrawals for 60 minutes, of an agent key the agent's for 30. The
 * one place rekey states them: the engine, error messages, the MCP tools' descriptions and
 * schemas, and the CLI's help read them from here (the `@rekey/core/cooldowns` subpath loads
 * nothing else). The sandbox, which plays the faucet, is checked against them in a test.
 */
export const COOLDOWN_MINUTES = { operator: 60, agent: 30 } as const;

export type CooldownMinutes = (typeof COOLDOWN_MINUTES)[keyof typeof COOLDOWN_MINUTES];
