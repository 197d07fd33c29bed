import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock } from "./clock.js";
import { createSandboxHandler, type SandboxHandlerOptions, type SandboxStats } from "./handler.js";

/** Options for {@link startSandbox}. */
export interface SandboxOptions extends SandboxHandlerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on; default 127.0.0.1 (loopback only). */
  host?: string;
}

/** A sandbox listening on a port. */
export interface RunningSandbox {
  /** The endpoint clients call: `http://host:port/ai-agents/api`. */
  url: string;
  /** `http://host:port`. */
  origin: string;
  port: number;
  /** The sandbox's clock (the one passed in, or the test clock it made). */
  clock: Clock;
  stats(): SandboxStats;
  /** Stops listening, cuts open connections and cancels delayed replies. */
  close(): Promise<void>;
}

/**
 * Starts a sandbox faucet on loopback.
 * Rejects with the listen error (e.g. `EADDRINUSE`), or an `Error` for a corrupt data file or
 * an invalid fault spec.
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<RunningSandbox> {
  const handler = createSandboxHandler(options);
  const server = createServer(handler.handle);
  await listen(server, options.port ?? 0, options.host ?? "127.0.0.1");
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const origin = `http://${host}:${address.port}`;
  let closing: Promise<void> | undefined;
  return {
    url: `${origin}/ai-agents/api`,
    origin,
    port: address.port,
    clock: handler.clock,
    stats: handler.stats,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        handler.dispose();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
