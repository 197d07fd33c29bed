import type { IncomingMessage, ServerResponse } from "node:http";
import { type ActionContext, runAction } from "./actions.js";
import { type Clock, createTestClock, systemClock } from "./clock.js";
import { type FaultSpec, validateFaults } from "./faults.js";
import { createFilePersister, type StatePersister } from "./persistence.js";
import { type ActionResult, type ReplyBody, refuse } from "./replies.js";
import { isActionName } from "./schemas.js";
import { createEmptyState, deserializeState, type SandboxState, serializeState } from "./state.js";

/** Receives one line per request (action, status, outcome code); never a key. */
export type SandboxLogger = (line: string) => void;

/** A fixed-window request limit per client address. */
export interface RateLimit {
  maxRequests: number;
  windowMs: number;
}

/** How a sandbox request handler behaves. */
export interface SandboxHandlerOptions {
  /** The sandbox's time. Passing one also enables `sandbox_advance_clock`. */
  clock?: Clock;
  /** Start on a test clock (at the current time) and enable `sandbox_advance_clock`. */
  testClock?: boolean;
  /** Persist state to this file (0600) after every change; load it on start. */
  dataFile?: string;
  /** Failures to inject; none by default. */
  faults?: FaultSpec[];
  /** Honour `request_id` on rotations (default true); false emulates the real service. */
  requestIdSupport?: boolean;
  /** Refuse requests beyond this rate with `rate_limited` (HTTP 429); off by default. */
  rateLimit?: RateLimit;
  /** Largest accepted request body in bytes (default 64 KiB); larger gets HTTP 413. */
  maxBodyBytes?: number;
  logger?: SandboxLogger;
  /**
   * Malformed-reply mode, for fuzzing clients: called with each action's reply once its work
   * is done (a rotation is committed); what it returns goes out instead (`body` as JSON, or
   * `text` as is), undefined keeps the reply. Faults still apply first.
   */
  rewriteReply?: ReplyRewriter;
}

/** What a {@link ReplyRewriter} sends instead: any JSON value, or any text. */
export type RewrittenReply = { status: number; body: unknown } | { status: number; text: string };

/** See {@link SandboxHandlerOptions.rewriteReply}. */
export type ReplyRewriter = (
  action: string,
  reply: { status: number; body: Readonly<Record<string, unknown>> },
) => RewrittenReply | undefined;

/** Counts for tests: calls per action (unknown names count as "unknown") and committed rotations. */
export interface SandboxStats {
  calls: Record<string, number>;
  rotations: number;
  rotationsByAction: Record<string, number>;
}

/** A node request handler serving the faucet protocol, with its state. */
export interface SandboxHandler {
  /** Serves one request; never throws (a failure becomes an `internal` reply). */
  handle(request: IncomingMessage, response: ServerResponse): void;
  /** The live state (replaced wholesale if a write to the data file fails). */
  readonly state: SandboxState;
  readonly clock: Clock;
  stats(): SandboxStats;
  /** Cancels replies still waiting on a `delay` fault. */
  dispose(): void;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
const ENDPOINT_PATHS = new Set(["/", "/ai-agents/api", "/ai-agents/api/"]);
const TOO_LARGE = Symbol("too large");

/**
 * Creates the sandbox request handler for in-process use (`http.createServer(handler.handle)`).
 * Throws an `Error` when `dataFile` exists but is not a valid state file, or a fault spec is
 * invalid.
 */
export function createSandboxHandler(options: SandboxHandlerOptions = {}): SandboxHandler {
  const faults = validateFaults(options.faults ?? []);
  const { clock, advanceClock } = resolveClock(options);
  const persister: StatePersister | undefined =
    options.dataFile === undefined ? undefined : createFilePersister(options.dataFile);
  let state = persister ? persister.load() : createEmptyState();
  let lastSavedText = serializeState(state);
  const requestIdSupport = options.requestIdSupport ?? true;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = options.logger ?? (() => {});
  const calls: Record<string, number> = {};
  const rotationsByAction: Record<string, number> = {};
  const faultCounters = new Map<string, number>();
  const rateWindows = new Map<string, { startMs: number; count: number }>();
  const pendingDelays = new Set<NodeJS.Timeout>();

  function takeFault(action: string): FaultSpec | undefined {
    if (!faults.some((fault) => fault.action === action)) return undefined;
    const nth = (faultCounters.get(action) ?? 0) + 1;
    faultCounters.set(action, nth);
    return faults.find((fault) => fault.action === action && fault.nth === nth);
  }

  function overRateLimit(address: string): boolean {
    if (!options.rateLimit) return false;
    const nowMs = clock.now();
    const window = rateWindows.get(address);
    if (!window || nowMs - window.startMs >= options.rateLimit.windowMs) {
      rateWindows.set(address, { startMs: nowMs, count: 1 });
      return false;
    }
    window.count += 1;
    return window.count > options.rateLimit.maxRequests;
  }

  /** Runs the action and persists its change; a failed write undoes the change. */
  function commit(action: string, body: Record<string, unknown>): ActionResult {
    if (!isActionName(action)) {
      return refuse("unknown_action", `Unknown action: ${action.slice(0, 64)}`);
    }
    const context: ActionContext = { state, nowMs: clock.now(), requestIdSupport, advanceClock };
    const result = runAction(action, body, context);
    if (result.mutated && persister) {
      const text = serializeState(state);
      try {
        persister.save(text);
        lastSavedText = text;
      } catch (error) {
        state = deserializeState(lastSavedText);
        log(`${action}: could not write the data file (${(error as Error).message})`);
        return refuse("internal", "The sandbox could not save its state", {}, 500);
      }
    }
    if (result.rotated) rotationsByAction[action] = (rotationsByAction[action] ?? 0) + 1;
    return result;
  }

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://sandbox").pathname;
    if (!ENDPOINT_PATHS.has(path)) {
      drain(request);
      return send(
        response,
        404,
        failureBody("not_found", "No such endpoint: POST to /ai-agents/api"),
      );
    }
    if (request.method !== "POST") {
      drain(request);
      response.setHeader("allow", "POST");
      return send(response, 405, failureBody("invalid_request", "Only POST is supported"));
    }
    const text = await readBody(request, maxBodyBytes);
    if (text === TOO_LARGE) {
      return send(
        response,
        413,
        failureBody("invalid_request", `Request body is larger than ${maxBodyBytes} bytes`),
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return send(response, 400, failureBody("invalid_request", "Request body is not valid JSON"));
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return send(
        response,
        400,
        failureBody("invalid_request", "Request body must be a JSON object"),
      );
    }
    const action = (body as Record<string, unknown>).action;
    if (typeof action !== "string") {
      return send(response, 200, failureBody("invalid_request", "action is required (a string)"));
    }
    const statsName = isActionName(action) ? action : "unknown";
    calls[statsName] = (calls[statsName] ?? 0) + 1;
    if (overRateLimit(request.socket.remoteAddress ?? "")) {
      response.setHeader("retry-after", "1");
      return send(response, 429, failureBody("rate_limited", "Too many requests; slow down"));
    }
    const fault = takeFault(action);
    if (fault?.kind === "status_500" || fault?.kind === "status_503") {
      log(`${statsName} -> injected ${fault.kind}`);
      const status = fault.kind === "status_500" ? 500 : 503;
      return send(response, status, failureBody("internal", "Injected server error"));
    }
    const result = commit(action, body as Record<string, unknown>);
    log(`${statsName} -> ${result.status} ${String(result.body.code ?? "ok")}`);
    switch (fault?.kind) {
      case "drop_after_commit":
        log(`${statsName} -> injected drop_after_commit`);
        request.socket.destroy();
        return;
      case "malformed_body":
        response.writeHead(200, { "content-type": "application/json; charset=utf-8" });
        response.end('{"success": true, "api_key": ');
        return;
      case "omit_key": {
        const { api_key: _omitted, ...rest } = result.body;
        return send(response, result.status, rest);
      }
      case "delay":
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            pendingDelays.delete(timer);
            resolve();
          }, fault.delayMs ?? 0);
          pendingDelays.add(timer);
        });
        return send(response, result.status, result.body);
      default: {
        const rewritten = options.rewriteReply?.(action, result);
        if (rewritten === undefined) return send(response, result.status, result.body);
        log(`${statsName} -> rewritten reply`);
        const text = "text" in rewritten ? rewritten.text : JSON.stringify(rewritten.body);
        response.writeHead(rewritten.status, {
          "content-type": "application/json; charset=utf-8",
          "content-length": Buffer.byteLength(text ?? ""),
        });
        response.end(text ?? "");
        return;
      }
    }
  }

  return {
    handle(request, response) {
      serve(request, response).catch((error: unknown) => {
        log(`internal error: ${(error as Error).message}`);
        if (!response.headersSent) {
          send(response, 500, failureBody("internal", "Internal sandbox error"));
        } else {
          response.destroy();
        }
      });
    },
    get state() {
      return state;
    },
    clock,
    stats: () => ({
      calls: { ...calls },
      rotations: Object.values(rotationsByAction).reduce((sum, count) => sum + count, 0),
      rotationsByAction: { ...rotationsByAction },
    }),
    dispose() {
      for (const timer of pendingDelays) clearTimeout(timer);
      pendingDelays.clear();
    },
  };
}

function resolveClock(options: SandboxHandlerOptions): {
  clock: Clock;
  advanceClock: ((ms: number) => void) | undefined;
} {
  const given = options.clock ?? (options.testClock ? createTestClock(Date.now()) : undefined);
  if (!given) return { clock: systemClock, advanceClock: undefined };
  const advance = (given as { advance?: unknown }).advance;
  if (typeof advance === "function") {
    return { clock: given, advanceClock: (ms) => advance.call(given, ms) };
  }
  // A clock without advance(): move the sandbox's view of it by an offset instead.
  let offsetMs = 0;
  return {
    clock: { now: () => given.now() + offsetMs },
    advanceClock: (ms) => {
      offsetMs += ms;
    },
  };
}

function failureBody(code: string, error: string): ReplyBody {
  return { success: false, error, code };
}

function send(response: ServerResponse, status: number, body: ReplyBody): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

/** Reads the body; past `maxBytes` it keeps draining (so the client can read the 413) but stops storing. */
function readBody(request: IncomingMessage, maxBytes: number): Promise<string | typeof TOO_LARGE> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      // A client that keeps sending far past the limit is cut off.
      else if (size > maxBytes * 16) request.destroy();
    });
    let ended = false;
    request.on("end", () => {
      ended = true;
      resolve(size > maxBytes ? TOO_LARGE : Buffer.concat(chunks).toString("utf8"));
    });
    request.on("close", () => {
      if (!ended) reject(new Error("the request closed before its body ended"));
    });
    request.on("error", reject);
  });
}

function drain(request: IncomingMessage): void {
  request.resume();
}
