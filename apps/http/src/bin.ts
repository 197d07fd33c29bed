#!/usr/bin/env node
/**
 * The composition root of rekey-http: the only module that reads `process.env` and argv,
 * builds the real store, core and server, and handles signals.
 */
import {
  createRekey,
  isLoopbackHost,
  openCredentialStore,
  startDeliveryFinisher,
  systemClock,
  toRekeyError,
} from "@rekey/core";
import { postgresUrlStores } from "@rekey/store-postgres/url-stores";
import pino from "pino";
import { createHttpApp, createHttpService } from "./app.js";
import { parseHttpConfig, USAGE } from "./config.js";
import { createEventHub } from "./events/event-hub.js";
import { createLogger } from "./logger.js";
import { createHttpMetrics } from "./metrics.js";
import { createHttpScheduler } from "./scheduler.js";
import { listen } from "./server.js";
import { hashToken, type Scope } from "./tokens.js";
import { createSessionStore } from "./ui/sessions.js";
import { VERSION } from "./version.js";

const LOG_WRITE_BYTES = 4096;
const LOG_FLUSH_MS = 1000;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return;
  }
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (argv.length === 1 && argv[0] === "openapi") {
    // The document the server serves at /openapi.json, without a store, faucet or token.
    const store = await openCredentialStore({ spec: "memory", env: {} });
    const app = createHttpApp({
      rekey: createRekey({ store, surface: "http", env: {} }),
      tokens: [],
      rateLimit: { capacity: 1, windowMs: 60_000 },
      logger: createLogger({ level: "silent" }),
      clock: systemClock,
    });
    const document = await (await app.request("/openapi.json")).json();
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    return;
  }
  if (argv[0] === "hash-token") {
    // Trailing newlines come from `echo` and editors; a token never ends with one.
    const token = (await readStdin()).replace(/\r?\n$/, "");
    if (token === "") throw new Error("hash-token reads the token from standard input");
    process.stdout.write(`${hashToken(token)}\n`);
    return;
  }

  // Installed before anything else of the server: without a listener Node dies of SIGTERM at
  // once, mid-start, so an orchestrator that stops a replica as soon as it says "listening" (or
  // while it opens its store) got an exit by signal, not the clean shutdown below. A signal
  // that arrives before the server is built is kept and acted on once it is.
  let stop: ((signal: string) => Promise<void>) | undefined;
  let stopAsked: string | undefined;
  const onSignal = (signal: string) => {
    if (stop === undefined) stopAsked ??= signal;
    else void stop(signal);
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));

  const config = await parseHttpConfig(argv, process.env);
  // Logs go to stderr so stdout carries only the URL line (scripts and tests read it).
  // Buffered into writes of at least 4 KiB: one write per request line costs the server more
  // CPU than the status route itself. Synchronous writes (pino's default) measured cheaper per
  // request than asynchronous ones, which hand every write to libuv's thread pool (see
  // bench/README.md). The timer bounds how long a line waits when idle; `stop` below and
  // pino's exit handler flush the rest.
  const destination = pino.destination({ dest: 2, sync: true, minLength: LOG_WRITE_BYTES });
  setInterval(() => destination.flush(), LOG_FLUSH_MS).unref();
  const logger = createLogger({ level: config.logLevel, destination });
  if (!isLoopbackHost(config.host) && config.tls === undefined) {
    logger.warn(
      { host: config.host },
      "listening beyond loopback without TLS: bearer tokens and keys cross the network in clear text",
    );
  }

  const store = await openCredentialStore({
    spec: config.storeSpec,
    env: process.env,
    urlStores: postgresUrlStores,
  });
  const rekey = createRekey({
    store,
    surface: "http",
    profile: config.profile,
    ...(config.actAs === undefined ? {} : { actAs: config.actAs }),
    env: process.env,
    delivery: {
      openStore: (location) =>
        openCredentialStore({ spec: location, env: process.env, urlStores: postgresUrlStores }),
    },
  });
  // Deliveries left by killed processes, and those of rotations by other replicas.
  const stopDeliveries = startDeliveryFinisher({
    finish: () => rekey.finishDeliveries(),
    watch: (listener) => store.watch(listener),
    onError: (error) =>
      logger.warn({ code: toRekeyError(error).code }, "finishing deliveries failed; will retry"),
  });
  const events = createEventHub({
    store,
    clock: systemClock,
    onError: (error) =>
      logger.warn({ code: toRekeyError(error).code }, "event source: store read failed"),
  });
  const sessions = config.ui ? createSessionStore(systemClock) : undefined;
  const schedule =
    config.scheduler === undefined
      ? undefined
      : createHttpScheduler({
          rekey,
          store,
          clock: systemClock,
          logger,
          actAs: config.actAs,
          intervalMs: config.scheduler.intervalMs,
          notify: config.scheduler.notify,
          publish: (event) => events.publish(event),
          keysChanged: () => keysChanged(),
        });
  const metrics = createHttpMetrics(systemClock);
  const { app, polledFastPath, keysChanged } = createHttpService({
    rekey,
    events,
    ...(sessions === undefined
      ? {}
      : {
          console: {
            store,
            sessions,
            // A browser sends a Secure cookie over HTTPS only; plain HTTP is safe on loopback alone.
            secureCookie: config.tls !== undefined || !isLoopbackHost(config.host),
          },
        }),
    tokens: config.tokens,
    rateLimit: { capacity: config.rotateLimitPerMinute, windowMs: 60_000 },
    logger,
    clock: systemClock,
    metrics: schedule
      ? { ...metrics, render: () => metrics.render() + schedule.renderMetrics() }
      : metrics,
  });
  const server = await listen({
    fetch: app.fetch,
    polledFastPath,
    host: config.host,
    port: config.port,
    tls: config.tls,
    logger,
    limits: { maxConnections: config.maxConnections },
  });
  logger.info({ url: server.url, store: store.kind, tokens: config.tokens.length }, "listening");
  // Start-up lines (the clear-text warning above all) are written now, not with the next 4 KiB.
  destination.flush();
  process.stdout.write(`${server.url}\n`);
  if (sessions !== undefined) {
    // Like Jupyter's: one use, 15 minutes. The token rides in the fragment, which the browser
    // never sends: no server, proxy or access log sees it, and the console wipes it at once.
    const loginToken = sessions.issueLoginToken({
      name: "login-link",
      scopes: new Set<Scope>(["status", "rotate"]),
      allows: () => true,
      restricted: false,
    });
    process.stderr.write(
      `rekey console: open ${server.url}/ui/login#token=${loginToken} (one-time link, valid 15 minutes)\n`,
    );
  }
  schedule?.scheduler.start();

  let stopping = false;
  stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: finishing requests in flight");
    // Event streams never finish by themselves: end them so that shutdown need not wait.
    events.close();
    const clean = await server.shutdown();
    // A rotation in flight finishes (or its journal is resolved by the next leader), then the
    // deliveries it started.
    await schedule?.scheduler.stop();
    await stopDeliveries();
    await rekey.close();
    await store.close();
    logger.info({ clean }, "stopped");
    destination.flushSync();
    process.exit(clean ? 0 : 1);
  };
  if (stopAsked !== undefined) void stop(stopAsked);
}

main(process.argv.slice(2)).catch((thrown: unknown) => {
  const error = toRekeyError(thrown);
  process.stderr.write(`rekey-http: ${error.code}: ${error.message}\n`);
  if (error.hint !== undefined) process.stderr.write(`  ${error.hint}\n`);
  process.exit(error.code === "CONFIG_INVALID" || error.code === "INVALID_INPUT" ? 2 : 1);
});
