import type { Dispatcher } from "undici";
import { RekeyError, type RekeyErrorDetails } from "../errors.js";

type Undici = typeof import("undici");

// `import "undici"` costs ~150 ms of cold start; the CLI's `--version` must not pay it, so it
// is loaded on the first request only.
let undiciLoading: Promise<Undici> | undefined;
function loadUndici(): Promise<Undici> {
  // A bundler that splits this CommonJS import may hand back a namespace holding only
  // `default`; accept both shapes so bundled apps work.
  undiciLoading ??= import("undici").then((module) =>
    (module as Undici & { default?: Undici }).Pool
      ? module
      : (module as { default: Undici }).default,
  );
  return undiciLoading;
}

// One keep-alive pool per origin (and connect timeout), shared by every client in the process:
// a CLI or server that builds many clients still reuses warm TLS connections.
const dispatchers = new Map<string, Dispatcher>();

// Replies rekey reads are a few hundred bytes; anything huge is not the faucet.
const MAX_RESPONSE_BYTES = 1024 * 1024;
const KEEP_ALIVE_MS = 10_000;

async function sharedDispatcher(origin: string, connectTimeoutMs: number): Promise<Dispatcher> {
  const undici = await loadUndici();
  const cacheKey = `${origin} ${connectTimeoutMs}`;
  let dispatcher = dispatchers.get(cacheKey);
  if (dispatcher === undefined) {
    dispatcher = new undici.Pool(origin, {
      connect: { timeout: connectTimeoutMs },
      keepAliveTimeout: KEEP_ALIVE_MS,
      maxResponseSize: MAX_RESPONSE_BYTES,
    });
    dispatchers.set(cacheKey, dispatcher);
  }
  return dispatcher;
}

/** How many shared connection pools exist now (one per origin and connect timeout). */
export function sharedDispatcherCount(): number {
  return dispatchers.size;
}

/**
 * Closes every shared connection pool, for tests and process exit. Clients keep working
 * afterwards: the next call opens a new pool.
 */
export async function closeAllDispatchers(): Promise<void> {
  const open = [...dispatchers.values()];
  dispatchers.clear();
  await Promise.all(open.map((dispatcher) => dispatcher.close().catch(() => undefined)));
}

/** A reply as received: status, the headers rekey reads, and the body text. */
export interface RawReply {
  status: number;
  retryAfter: string | undefined;
  text: string;
}

export interface SendOptions {
  url: URL;
  body: string;
  userAgent: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  signal: AbortSignal | undefined;
  action: string;
  /** False when a repeat could change state; then a lost reply leaves the outcome unknown. */
  idempotent: boolean;
}

// Failures that happen before a single byte of the request can have left: the server never saw it.
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function errorCodes(error: unknown): string[] {
  if (typeof error !== "object" || error === null) return [];
  const codes: string[] = [];
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") codes.push(code);
  // Node's happy-eyeballs connect reports an AggregateError of per-address failures.
  const nested = (error as { errors?: unknown }).errors;
  if (Array.isArray(nested)) for (const inner of nested) codes.push(...errorCodes(inner));
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined && cause !== error) codes.push(...errorCodes(cause));
  return codes;
}

/**
 * POSTs one JSON body and reads the whole reply, under a connect timeout and a whole-request
 * timeout, cut short by `signal`.
 *
 * A caller's abort is reported as UPSTREAM_TIMEOUT with `details.aborted: true` (the closed code
 * set has no "cancelled"; to the caller, both mean "gave up waiting on the faucet").
 * On a non-idempotent action, every failure after the request may have left sets
 * `details.outcomeUnknown: true`: the faucet may have acted (e.g. rotated the key).
 * @throws RekeyError UPSTREAM_UNAVAILABLE (refused, reset, closed), UPSTREAM_TIMEOUT (connect or
 *   request timeout, abort), UPSTREAM_INVALID_RESPONSE (reply over 1 MiB).
 */
export async function sendJson(options: SendOptions): Promise<RawReply> {
  const { signal, action } = options;
  const base: RekeyErrorDetails = { action };
  if (signal?.aborted) {
    throw new RekeyError("UPSTREAM_TIMEOUT", `Request ${action} aborted before it was sent`, {
      details: { ...base, aborted: true },
      cause: signal.reason,
    });
  }
  const [undici, dispatcher] = await Promise.all([
    loadUndici(),
    sharedDispatcher(options.url.origin, options.connectTimeoutMs),
  ]);

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`request timeout after ${options.requestTimeoutMs} ms`));
  }, options.requestTimeoutMs);
  const onCallerAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onCallerAbort, { once: true });

  try {
    const response = await undici.request(options.url, {
      dispatcher,
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        "user-agent": options.userAgent,
      },
      body: options.body,
      signal: controller.signal,
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
    });
    const text = await response.body.text();
    const retryAfter = response.headers["retry-after"];
    return {
      status: response.statusCode,
      retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      text,
    };
  } catch (error) {
    throw transportError(error, { ...options, timedOut, aborted: signal?.aborted === true });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onCallerAbort);
  }
}

function transportError(
  error: unknown,
  context: SendOptions & { timedOut: boolean; aborted: boolean },
): RekeyError {
  const { action, idempotent } = context;
  const codes = errorCodes(error);
  const neverSent = codes.some((code) => NOT_SENT_CODES.has(code));
  const details: RekeyErrorDetails = { action };
  if (!idempotent && !neverSent) details.outcomeUnknown = true;

  if (codes.includes("UND_ERR_RES_EXCEEDED_MAX_SIZE")) {
    return new RekeyError(
      "UPSTREAM_INVALID_RESPONSE",
      `The faucet's reply to ${action} was too large`,
      {
        details,
        cause: error,
      },
    );
  }
  if (context.aborted) {
    return new RekeyError("UPSTREAM_TIMEOUT", `Request ${action} aborted`, {
      details: { ...details, aborted: true },
      cause: error,
    });
  }
  if (
    context.timedOut ||
    codes.includes("UND_ERR_HEADERS_TIMEOUT") ||
    codes.includes("UND_ERR_BODY_TIMEOUT")
  ) {
    return new RekeyError(
      "UPSTREAM_TIMEOUT",
      `The faucet did not answer ${action} within ${context.requestTimeoutMs} ms`,
      {
        details,
        cause: error,
        hint: "Try again; if this was a rotation, run the recovery check first.",
      },
    );
  }
  if (codes.includes("UND_ERR_CONNECT_TIMEOUT")) {
    return new RekeyError(
      "UPSTREAM_TIMEOUT",
      `Could not connect to the faucet within ${context.connectTimeoutMs} ms`,
      { details, cause: error },
    );
  }
  const reason = codes[0] ?? (error instanceof Error ? error.name : "unknown error");
  return new RekeyError(
    "UPSTREAM_UNAVAILABLE",
    `The faucet at ${context.url.host} could not be reached for ${action} (${reason})`,
    { details, cause: error, hint: "Check the network and the API URL, then try again." },
  );
}
