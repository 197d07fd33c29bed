import { expect } from "vitest";
import { createTestClock, type TestClock } from "./clock.js";
import { type RunningSandbox, type SandboxOptions, startSandbox } from "./server.js";

/** A reply as a client sees it. */
export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** POSTs `body` as JSON to the sandbox and parses the JSON reply. */
export async function call(url: string, body: unknown): Promise<Reply> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
}

/** Calls and expects `success: true` with HTTP 200; returns the body. */
export async function ok(url: string, body: unknown): Promise<Record<string, unknown>> {
  const reply = await call(url, body);
  expect(reply, JSON.stringify(reply.body)).toMatchObject({ status: 200, body: { success: true } });
  return reply.body;
}

/** Calls and expects a refusal with `code` (HTTP 200 unless told). */
export async function refused(
  url: string,
  body: unknown,
  code: string,
  status = 200,
): Promise<Record<string, unknown>> {
  const reply = await call(url, body);
  expect(reply.status).toBe(status);
  expect(reply.body).toMatchObject({ success: false, code });
  expect(typeof reply.body.error).toBe("string");
  expect((reply.body.error as string).length).toBeGreaterThan(0);
  return reply.body;
}

/** A string field of a reply, failing the test when it is absent. */
export function text(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  expect(typeof value, `${field} in ${JSON.stringify(Object.keys(body))}`).toBe("string");
  return value as string;
}

export interface Operator {
  operatorId: number;
  apiKey: string;
  recoveryCode: string;
}

export async function registerOperator(url: string, name?: string): Promise<Operator> {
  const body = await ok(url, { action: "register", ...(name ? { name } : {}) });
  return {
    operatorId: body.operator_id as number,
    apiKey: text(body, "api_key"),
    recoveryCode: text(body, "recovery_code"),
  };
}

export async function createAgent(
  url: string,
  operatorKey: string,
  extra: Record<string, unknown> = {},
): Promise<{ agentId: number; apiKey: string }> {
  const body = await ok(url, {
    action: "create_agent",
    api_key: operatorKey,
    name: "bot",
    ...extra,
  });
  return { agentId: body.agent_id as number, apiKey: text(body, "api_key") };
}

/** What an operator can see of its account: used to show a request changed nothing. */
export async function observe(url: string, operatorKey: string): Promise<unknown> {
  return {
    whoami: await ok(url, { action: "whoami", api_key: operatorKey }),
    agents: await ok(url, { action: "list_agents", api_key: operatorKey }),
  };
}

/** Starts a sandbox on a fresh test clock; closes it when the returned `close` is called. */
export async function startOnTestClock(
  options: SandboxOptions = {},
): Promise<{ sandbox: RunningSandbox; clock: TestClock; url: string }> {
  const clock = createTestClock();
  const sandbox = await startSandbox({ clock, ...options });
  return { sandbox, clock, url: sandbox.url };
}

export const MINUTE_MS = 60_000;
