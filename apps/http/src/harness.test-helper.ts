import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CredentialStore, createRekey, openCredentialStore, type Rekey } from "@rekey/core";
import {
  createTestClock,
  type FaultSpec,
  type RunningSandbox,
  startSandbox,
  type TestClock,
} from "@rekey/sandbox";
import {
  type createHttpApp,
  createHttpService,
  type HttpAppDeps,
  type HttpService,
} from "./app.js";
import { createEventHub, type EventHub } from "./events/event-hub.js";
import { createLogger } from "./logger.js";
import { hashToken, type Scope, type TokenConfig } from "./tokens.js";
import { createSessionStore, type SessionStore } from "./ui/sessions.js";

/** A raw bearer token and the configuration entry that admits it. */
export interface TestToken {
  raw: string;
  config: TokenConfig;
}

/** Makes a random bearer token with the given scopes (and principals, when given). */
export function makeToken(name: string, scopes: Scope[], principals?: string[]): TestToken {
  const raw = `tok_${randomBytes(24).toString("base64url")}`;
  return {
    raw,
    config: { name, sha256: hashToken(raw), scopes, ...(principals ? { principals } : {}) },
  };
}

/** A sandbox faucet plus a temp-dir file store holding a registered operator. */
export interface Faucet {
  sandbox: RunningSandbox;
  /** The test clock shared by the sandbox and core; undefined on the wall clock. */
  clock: TestClock | undefined;
  dir: string;
  operatorFingerprint: string;
  close(): Promise<void>;
}

/**
 * Starts the sandbox and registers an operator into a fresh file store in `dir`. In-process
 * tests use a test clock (shared with core); a spawned server runs on the wall clock, so the
 * sandbox must too (`testClock: false`).
 */
export async function startFaucet(
  options: { faults?: FaultSpec[]; testClock?: boolean; requestIdSupport?: boolean } = {},
): Promise<Faucet> {
  const clock = options.testClock === false ? undefined : createTestClock();
  const sandbox = await startSandbox({
    port: 0,
    clock,
    faults: options.faults,
    requestIdSupport: options.requestIdSupport,
  });
  const dir = await mkdtemp(join(tmpdir(), "rekey-http-"));
  const store = await openCredentialStore({ spec: dir, env: {} });
  const rekey = createRekey({
    store,
    surface: "library",
    baseUrl: sandbox.url,
    env: {},
    clock: sandbox.clock,
  });
  const { fingerprint } = await rekey.register({ name: "http test operator" });
  await rekey.close();
  await store.close();
  return {
    sandbox,
    clock,
    dir,
    operatorFingerprint: fingerprint,
    async close() {
      await sandbox.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The app wired to real core over a real file store and the sandbox, with captured logs. */
export interface Harness extends Faucet {
  rekey: Rekey;
  store: CredentialStore;
  app: ReturnType<typeof createHttpApp>;
  /** The app's node-level answer to successful polls, for a server started with `listen`. */
  polledFastPath: HttpService["polledFastPath"];
  /** The event source behind `/v1/events`, on the harness's store. */
  events: EventHub;
  /** The service's `keysChanged` (app.ts), for a scheduler wired to this app. */
  keysChanged: () => void;
  /** The console's sessions (with `console: true`). */
  sessions: SessionStore;
  tokens: { status: TestToken; rotate: TestToken; release: TestToken; reader: TestToken };
  logs: string[];
  /** Calls the app in-process with a token (by role) and an optional JSON body. */
  call(
    method: string,
    path: string,
    options?: {
      token?: TestToken | string | null;
      body?: unknown;
      rawBody?: string;
      headers?: Record<string, string>;
    },
  ): Promise<Response>;
}

export async function startHarness(
  options: {
    faults?: FaultSpec[];
    requestIdSupport?: boolean;
    rotateLimit?: number;
    bodyLimitBytes?: number;
    logLevel?: string;
    /** Tokens configured besides the four standard ones. */
    extraTokens?: TestToken[];
    /** Serve the web console at /ui. */
    console?: boolean;
    /** Further `createHttpApp` options. */
    app?: Partial<HttpAppDeps>;
  } = {},
): Promise<Harness> {
  const faucet = await startFaucet(options);
  const store = await openCredentialStore({ spec: faucet.dir, env: {} });
  // The sandbox's test clock drives core and the rate limiter too, so tests jump past
  // cooldowns and refills instead of waiting.
  const clock = faucet.sandbox.clock;
  const rekey = createRekey({ store, surface: "http", env: {}, clock });
  const tokens = {
    status: makeToken("monitor", ["status"]),
    rotate: makeToken("deploy", ["status", "rotate", "force"]),
    release: makeToken("release", ["rotate"]),
    reader: makeToken("reader", ["read_key"]),
  };
  const logs: string[] = [];
  const logger = createLogger({
    level: options.logLevel,
    destination: { write: (line: string) => void logs.push(line) },
  });
  const events = createEventHub({ store, clock });
  const sessions = createSessionStore(clock);
  const { app, polledFastPath, keysChanged } = createHttpService({
    rekey,
    events,
    ...(options.console === true ? { console: { store, sessions, secureCookie: false } } : {}),
    tokens: [...Object.values(tokens), ...(options.extraTokens ?? [])].map((token) => token.config),
    rateLimit: { capacity: options.rotateLimit ?? 100, windowMs: 60_000 },
    logger,
    clock,
    bodyLimitBytes: options.bodyLimitBytes,
    ...options.app,
  });
  return {
    ...faucet,
    rekey,
    store,
    app,
    polledFastPath,
    keysChanged,
    events,
    sessions,
    tokens,
    logs,
    call(method, path, callOptions = {}) {
      const headers = new Headers(callOptions.headers);
      const token = callOptions.token === undefined ? tokens.rotate : callOptions.token;
      if (token !== null) {
        headers.set("authorization", `Bearer ${typeof token === "string" ? token : token.raw}`);
      }
      let body: string | undefined = callOptions.rawBody;
      if (callOptions.body !== undefined) body = JSON.stringify(callOptions.body);
      if (body !== undefined && !headers.has("content-type")) {
        headers.set("content-type", "application/json");
      }
      return Promise.resolve(app.request(path, { method, headers, body }));
    },
    async close() {
      events.close();
      await rekey.close();
      await store.close();
      await faucet.close();
    },
  };
}
