import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "vitest";
import { type ErrorCode, RekeyError } from "../errors.js";

/** Every RekeyError a test file produced, checked at the end for leaked secrets. */
const seenErrors: RekeyError[] = [];

/** Awaits a rejection, asserts it is a RekeyError with `code`, and records it. */
export async function expectRekeyError(
  promise: Promise<unknown>,
  code: ErrorCode,
): Promise<RekeyError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a RekeyError ${code}`).toBeInstanceOf(RekeyError);
  const error = caught as RekeyError;
  seenErrors.push(error);
  expect(error.code, error.message).toBe(code);
  return error;
}

/** Records an error produced some other way, for {@link expectNoSecretInErrors}. */
export function recordError(error: RekeyError): void {
  seenErrors.push(error);
}

/** Asserts that no recorded error's message, hint or details contains any of `secrets`. */
export function expectNoSecretInErrors(secrets: Iterable<string>): number {
  const list = [...secrets].filter((secret) => secret.length > 0);
  for (const error of seenErrors) {
    const visible = JSON.stringify([error.message, error.hint, error.details, String(error)]);
    for (const secret of list) expect(visible.includes(secret), error.message).toBe(false);
  }
  return seenErrors.length;
}

/** A sleep that does not wait and remembers what it was asked to wait. */
export function recordingSleep(onSleep?: (ms: number) => void): {
  sleep: (ms: number) => Promise<void>;
  waits: number[];
} {
  const waits: number[] = [];
  return {
    waits,
    sleep: async (ms: number) => {
      waits.push(ms);
      onSleep?.(ms);
    },
  };
}

/** What a {@link startFakeFaucet} route answers. */
export interface FakeReply {
  status?: number;
  /** An object is sent as JSON; a string as is. */
  body: unknown;
  headers?: Record<string, string>;
}

/** One request the fake received. */
export interface FakeRequest {
  method: string;
  contentType: string | undefined;
  body: Record<string, unknown>;
}

/**
 * A tiny HTTP server that answers like the real service (only `error` text, no `code`), for
 * the shapes the sandbox never sends. It counts TCP connections to observe keep-alive reuse.
 */
export async function startFakeFaucet(answer: (request: FakeRequest) => FakeReply): Promise<{
  url: string;
  requests: FakeRequest[];
  connections: () => number;
  close: () => Promise<void>;
}> {
  const requests: FakeRequest[] = [];
  let connections = 0;
  const server: Server = createServer(async (request, response) => {
    const text = await readAll(request);
    const received: FakeRequest = {
      method: request.method ?? "",
      contentType: request.headers["content-type"],
      body: JSON.parse(text) as Record<string, unknown>,
    };
    requests.push(received);
    const reply = answer(received);
    const payload = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
    response.writeHead(reply.status ?? 200, {
      "content-type": "application/json",
      ...reply.headers,
    });
    response.end(payload);
  });
  server.on("connection", () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ai-agents/api`,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function readAll(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
