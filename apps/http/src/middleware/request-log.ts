import type { Logger } from "pino";

/**
 * Routes that monitors, probes and scrapers poll. A successful request to one is logged at
 * debug: at the default level, polling neither floods the log nor pays for a log line (the
 * costliest part of a status request). Failures (401, 403, 5xx...) and every other route,
 * rotations and key reads above all, are logged at info or above.
 */
export const POLLED_ROUTES: ReadonlySet<string> = new Set([
  "/v1/status",
  "/healthz",
  "/readyz",
  "/metrics",
]);

/** The level of a request's log line. */
export function requestLogLevel(status: number, route: string): "error" | "debug" | "info" {
  return status >= 500 ? "error" : status < 400 && POLLED_ROUTES.has(route) ? "debug" : "info";
}

/** One request's log line: only the token's configured name, never the token. */
export interface RequestLogLine {
  request_id: string;
  method: string;
  route: string;
  status: number;
  duration_ms: number;
  token_name: string | undefined;
  code: string | undefined;
}

/**
 * Writes the line at its level, or nothing when that level is off. `line` is called only when
 * the level is on: at info, a status poll costs no log work at all. Pino's redact paths (see
 * logger.ts) are a second line of defence against a token in a line.
 */
export function logRequest(
  logger: Logger,
  status: number,
  route: string,
  line: () => RequestLogLine,
): void {
  const level = requestLogLevel(status, route);
  if (!logger.isLevelEnabled(level)) return;
  logger[level](line(), "request");
}
