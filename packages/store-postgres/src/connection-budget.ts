import { RekeyError } from "@rekey/core";

/**
 * How many connections one store handle (one process) opens at most, all kinds together:
 * one lock session, one LISTEN connection (only while someone watches), the rest pooled for
 * reads and writes. A fleet of N processes needs at most N times this from the server.
 */
export const DEFAULT_CONNECTION_BUDGET = 5;

/** One for locks, one for LISTEN, at least one for data. */
export const MIN_CONNECTION_BUDGET = 3;

/** Beyond this a budget is surely a typo: PostgreSQL's own default `max_connections` is 100. */
const MAX_CONNECTION_BUDGET = 1000;

/** Seconds a client is told to wait after STORE_BUSY: a burst drains in well under that. */
const BUSY_RETRY_AFTER_SECONDS = 1;

/** How a store handle spends its budget. */
export interface ConnectionBudget {
  /** The whole budget. */
  total: number;
  /** The pool for reads, writes and audit appends: the budget less the lock session and LISTEN. */
  data: number;
}

/**
 * Splits a budget of `total` connections.
 *
 * @throws RekeyError CONFIG_INVALID when `total` is not a whole number from 3 to 1000.
 */
export function connectionBudget(total: number = DEFAULT_CONNECTION_BUDGET): ConnectionBudget {
  if (!Number.isInteger(total) || total < MIN_CONNECTION_BUDGET || total > MAX_CONNECTION_BUDGET) {
    throw new RekeyError(
      "CONFIG_INVALID",
      `A PostgreSQL store needs a connection budget from ${MIN_CONNECTION_BUDGET} to ${MAX_CONNECTION_BUDGET}, not ${String(total).slice(0, 20)}`,
      {
        hint: `Use connections=${DEFAULT_CONNECTION_BUDGET} (the default) in the store URL: one lock session, one LISTEN connection, the rest for reads and writes.`,
      },
    );
  }
  return { total, data: total - 2 };
}

/**
 * The `connections` parameter of a store URL, as a budget.
 *
 * @throws RekeyError CONFIG_INVALID when it is not a whole number from 3 to 1000.
 */
export function parseConnectionBudget(text: string): number {
  const total = /^\d{1,4}$/.test(text) ? Number(text) : Number.NaN;
  return connectionBudget(total).total;
}

/**
 * Whether `error` says the budget, this process's or the server's, is spent: node-postgres's
 * pool waited `connectionTimeoutMillis` for one of its connections (it reports that only by
 * this message), or the server has no connection slot left (SQLSTATE 53300).
 */
export function isBusy(error: unknown): boolean {
  if (isServerFull(error)) return true;
  return error instanceof Error && error.message === "timeout exceeded when trying to connect";
}

/** STORE_BUSY for `action` on the store at `location`, with the seconds to wait. */
export function storeBusy(action: string, location: string, error: unknown): RekeyError {
  const serverFull = isServerFull(error);
  return new RekeyError(
    "STORE_BUSY",
    serverFull
      ? `Cannot ${action} the PostgreSQL store at ${location}: the server has no free connection (53300)`
      : `Cannot ${action} the PostgreSQL store at ${location}: every connection of this process's budget stayed busy`,
    {
      cause: error,
      details: {
        location,
        retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS,
        ...(serverFull ? { errno: "53300" } : {}),
      },
      hint: serverFull
        ? "Retry in a moment. If it persists, the server's max_connections is below the fleet's need: replicas × connections (see docs/operations.md)."
        : "Retry in a moment. If it persists under normal load, raise connections= in the store URL (and the server's max_connections with it).",
    },
  );
}

/** SQLSTATE 53300, too_many_connections. (connection.ts imports this module, not back.) */
function isServerFull(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "53300";
}
