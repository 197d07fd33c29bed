import type { Agent, ClientRequest, IncomingMessage, RequestOptions } from "node:http";
import type { Socket } from "node:net";
import { RekeyError, type RekeyErrorDetails } from "../errors.js";

// node:http with a keep-alive Agent: rekey sends a few small JSON POSTs, which node's own client
// does as well as any. (undici cost ~60 ms to import plus its WebAssembly parser's compile on
// every `rekey status`.) Loaded on the first request, so importing core stays cheap.
type HttpModule = Pick<typeof import("node:http"), "Agent" | "request">;
const modules = new Map<string, Promise<HttpModule>>();
function httpModule(protocol: string): Promise<HttpModule> {
  let loading = modules.get(protocol);
  if (loading === undefined) {
    loading = protocol === "https:" ? import("node:https") : import("node:http");
    modules.set(protocol, loading);
  }
  return loading;
}

// One keep-alive agent per origin (and connect timeout), shared by every client in the process:
// a CLI or server that builds many clients still reuses warm TLS connections.
const agents = new Map<string, Agent>();

// Replies rekey reads are a few hundred bytes; anything huge is not the faucet.
const MAX_RESPONSE_BYTES = 1024 * 1024;
// How long an idle connection stays open; node's agent closes it sooner when the server's
// `Keep-Alive: timeout=` hint is shorter, so a request rarely meets a connection being closed.
const KEEP_ALIVE_MS = 10_000;

// Our own codes for the two limits node's client does not enforce itself.
const CONNECT_TIMEOUT = "REKEY_CONNECT_TIMEOUT";
const RESPONSE_TOO_LARGE = "REKEY_RESPONSE_TOO_LARGE";

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

async function sharedAgent(url: URL, connectTimeoutMs: number): Promise<Agent> {
  const http = await httpModule(url.protocol);
  const cacheKey = `${url.origin} ${connectTimeoutMs}`;
  let agent = agents.get(cacheKey);
  if (agent === undefined) {
    // No cap on sockets (undici's Pool had none either): concurrent calls each get one.
    agent = new http.Agent({ keepAlive: true, timeout: KEEP_ALIVE_MS, scheduling: "lifo" });
    agents.set(cacheKey, agent);
  }
  return agent;
}

/** How many shared connection pools exist now (one per origin and connect timeout). */
export function sharedDispatcherCount(): number {
  return agents.size;
}

/**
 * Closes every shared connection pool, for tests and process exit. Clients keep working
 * afterwards: the next call opens a new pool.
 */
export async function closeAllDispatchers(): Promise<void> {
  const open = [...agents.values()];
  agents.clear();
  for (const agent of open) agent.destroy();
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
  CONNECT_TIMEOUT,
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
  const [http, agent] = await Promise.all([
    httpModule(options.url.protocol),
    sharedAgent(options.url, options.connectTimeoutMs),
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
    return await post(http, {
      url: options.url,
      agent,
      body: options.body,
      userAgent: options.userAgent,
      connectTimeoutMs: options.connectTimeoutMs,
      signal: controller.signal,
    });
  } catch (error) {
    throw transportError(error, { ...options, timedOut, aborted: signal?.aborted === true });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onCallerAbort);
  }
}

interface PostOptions {
  url: URL;
  agent: Agent;
  body: string;
  userAgent: string;
  connectTimeoutMs: number;
  signal: AbortSignal;
}

/** One POST on `agent`; rejects with node's error (or one of our two codes) on any failure. */
function post(http: HttpModule, options: PostOptions): Promise<RawReply> {
  const requestOptions: RequestOptions = {
    agent: options.agent,
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      "user-agent": options.userAgent,
      "content-length": Buffer.byteLength(options.body),
    },
    signal: options.signal,
  };
  return new Promise<RawReply>((resolve, reject) => {
    const request = http.request(options.url, requestOptions, (response) => {
      readReply(request, response).then(resolve, reject);
    });
    request.once("error", reject);
    request.once("socket", (socket) => limitConnect(request, socket, options.connectTimeoutMs));
    request.end(options.body);
  });
}

/** Fails a request whose new connection (TCP, and TLS for https) is not up in time. */
function limitConnect(request: ClientRequest, socket: Socket, connectTimeoutMs: number): void {
  // A reused keep-alive connection is already up.
  if (!socket.connecting) return;
  const timer = setTimeout(() => {
    request.destroy(codedError(CONNECT_TIMEOUT, `could not connect within ${connectTimeoutMs} ms`));
  }, connectTimeoutMs);
  const connected = "encrypted" in socket ? "secureConnect" : "connect";
  socket.once(connected, () => clearTimeout(timer));
  socket.once("close", () => clearTimeout(timer));
}

/** Reads the whole body (at most MAX_RESPONSE_BYTES) as UTF-8 text. */
function readReply(request: ClientRequest, response: IncomingMessage): Promise<RawReply> {
  return new Promise<RawReply>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        const error = codedError(RESPONSE_TOO_LARGE, `reply over ${MAX_RESPONSE_BYTES} bytes`);
        request.destroy(error);
        reject(error);
        return;
      }
      chunks.push(chunk);
    });
    response.once("error", reject);
    // The connection closed before the whole body came.
    response.once("close", () => {
      if (!response.complete) reject(codedError("ECONNRESET", "reply cut off"));
    });
    response.once("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const retryAfter = response.headers["retry-after"];
      resolve({
        status: response.statusCode ?? 0,
        // A byte-order mark is not part of the JSON.
        text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      });
    });
  });
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

  if (codes.includes(RESPONSE_TOO_LARGE)) {
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
  if (context.timedOut) {
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
  if (codes.includes(CONNECT_TIMEOUT)) {
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
