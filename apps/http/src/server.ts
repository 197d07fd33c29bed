import {
  createServer as createHttpServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import {
  applyServerLimits,
  DEFAULT_SERVER_LIMITS,
  type ServerLimits,
  serverCreationOptions,
} from "@rekey/core";
import type { Logger } from "pino";

/** How to listen. `tls` switches to HTTPS. */
export interface ListenOptions {
  fetch: (request: Request) => Response | Promise<Response>;
  /**
   * Tried first on every request: true when it answered (see middleware/polled-fast-path.ts),
   * false to hand the request to `fetch`.
   */
  polledFastPath?: (incoming: IncomingMessage, outgoing: ServerResponse) => boolean;
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer } | undefined;
  logger: Logger;
  /** How long `shutdown` waits for in-flight requests before cutting them; default 30 s. */
  shutdownTimeoutMs?: number;
  /** Timeouts and the connection cap; default `DEFAULT_SERVER_LIMITS` from core. */
  limits?: Partial<ServerLimits> | undefined;
}

/** A listening server. */
export interface RunningServer {
  /** e.g. `http://127.0.0.1:8787`. */
  url: string;
  /**
   * Stops accepting connections, lets in-flight requests (a rotation, say) finish, then
   * resolves. Idle keep-alive connections are closed so they do not hold the process open.
   * Resolves `false` when the timeout cut requests short.
   */
  shutdown(): Promise<boolean>;
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * `create` (node's http or https `createServer`) with `fastPath` tried before the adapter's
 * listener on each request.
 */
function withFastPath(
  create: typeof createHttpServer,
  fastPath: ListenOptions["polledFastPath"],
): typeof createHttpServer {
  if (fastPath === undefined) return create;
  return ((serverOptions: ServerOptions, listener: RequestListener) =>
    create(serverOptions, (incoming, outgoing) => {
      if (!fastPath(incoming, outgoing)) listener(incoming, outgoing);
    })) as typeof createHttpServer;
}

/** Starts @hono/node-server on `host:port` (port 0: any free port). */
export function listen(options: ListenOptions): Promise<RunningServer> {
  const limits = { ...DEFAULT_SERVER_LIMITS, ...options.limits };
  return new Promise((resolve, reject) => {
    const server = (
      options.tls === undefined
        ? serve({
            fetch: options.fetch,
            hostname: options.host,
            port: options.port,
            createServer: withFastPath(createHttpServer, options.polledFastPath),
            serverOptions: serverCreationOptions(limits),
          })
        : serve({
            fetch: options.fetch,
            hostname: options.host,
            port: options.port,
            createServer: withFastPath(
              createHttpsServer as unknown as typeof createHttpServer,
              options.polledFastPath,
            ),
            serverOptions: {
              ...serverCreationOptions(limits),
              cert: options.tls.cert,
              key: options.tls.key,
            },
          })
    ) as Server;
    applyServerLimits(server, limits);
    server.once("error", reject);
    server.once("listening", () => {
      server.off("error", reject);
      const address = server.address() as AddressInfo;
      const scheme = options.tls === undefined ? "http" : "https";
      const url = `${scheme}://${formatHost(options.host)}:${address.port}`;
      let closing: Promise<boolean> | undefined;
      resolve({
        url,
        shutdown() {
          closing ??= new Promise<boolean>((done) => {
            let timedOut = false;
            // Keep-alive connections that go idle after close() began would otherwise wait
            // for their timeout; close them as they appear.
            const sweeper = setInterval(() => server.closeIdleConnections(), 50);
            const deadline = setTimeout(() => {
              timedOut = true;
              options.logger.warn("shutdown timeout: closing connections with requests in flight");
              server.closeAllConnections();
            }, options.shutdownTimeoutMs ?? 30_000);
            server.close(() => {
              clearInterval(sweeper);
              clearTimeout(deadline);
              done(!timedOut);
            });
            server.closeIdleConnections();
          });
          return closing;
        },
      });
    });
  });
}
