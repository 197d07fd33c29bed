import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import {
  agent,
  type CredentialStore,
  createRekey,
  OPERATOR,
  openCredentialStore,
  openKey,
  type Rekey,
} from "@rekey/core";
import {
  createTestClock,
  type FaultSpec,
  type RunningSandbox,
  startSandbox,
  type TestClock,
} from "@rekey/sandbox";
import { TEST_MASTER_KEY_ENV } from "@rekey/store-postgres/testing";
import { postgresUrlStores } from "@rekey/store-postgres/url-stores";
import { createMcpServer } from "./server.js";

/** Every tool result a test saw, for the suite-wide "no raw key" check. */
export interface RecordedResult {
  tool: string;
  revealKeys: boolean;
  result: CallToolResult;
}

/**
 * Secrets and results seen by every world in this test file: each key the sandbox issued (read
 * from the store before and after every call) and every tool result.
 */
export const seen = { secrets: new Set<string>(), results: [] as RecordedResult[] };

/** A client connected to `createMcpServer` over an in-memory transport. */
export interface McpSession {
  client: Client;
  rekey: Rekey;
  call(tool: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

/** A real sandbox, a real file store in a temp dir, and an operator registered in profile "default". */
export interface World {
  sandbox: RunningSandbox;
  clock: TestClock;
  dir: string;
  store: CredentialStore;
  /** The test's own handle on profile "default" (surface "library"). */
  setup: Rekey;
  /** A Rekey on this world's store and clock. */
  rekey(profile?: string, actAs?: string): Rekey;
  /** The raw key the store holds for a principal of a profile (test-only peek). */
  storedKey(profile: string, agentId?: number): Promise<string | undefined>;
  /** Reads every key in the store into `seen.secrets`. */
  rememberSecrets(): Promise<void>;
  /** `actAs`: the principal the session acts as (rekey-mcp's `--as`). */
  connect(options?: {
    profile?: string;
    revealKeys?: boolean;
    actAs?: string;
  }): Promise<McpSession>;
  close(): Promise<void>;
}

/** `store`: a store spec instead of a file store in `dir` (a postgres:// URL). */
export async function startWorld(
  options: { faults?: FaultSpec[]; store?: string } = {},
): Promise<World> {
  const clock = createTestClock(Date.now());
  const sandbox = await startSandbox({ port: 0, clock, faults: options.faults ?? [] });
  const dir = await mkdtemp(join(tmpdir(), "rekey-mcp-"));
  const store = await openCredentialStore({
    spec: options.store ?? dir,
    // PostgreSQL stores need a master key; a file store in `dir` makes its own (which the
    // binaries the tests spawn on `dir` find there too).
    env: options.store === undefined ? {} : { ...TEST_MASTER_KEY_ENV },
    urlStores: postgresUrlStores,
  });
  const closers: (() => Promise<void>)[] = [];
  const rekey = (profile = "default", actAs?: string) => {
    const made = createRekey({
      store,
      surface: "mcp",
      profile,
      ...(actAs === undefined ? {} : { actAs }),
      baseUrl: sandbox.url,
      clock,
      env: {},
    });
    closers.push(() => made.close());
    return made;
  };
  const setup = createRekey({ store, surface: "library", baseUrl: sandbox.url, clock, env: {} });
  closers.push(() => setup.close());

  const rememberSecrets = async () => {
    const { data } = await store.read();
    for (const record of Object.values(data.principals)) {
      if (record.key !== undefined) seen.secrets.add(openKey(record.key));
    }
  };

  const world: World = {
    sandbox,
    clock,
    dir,
    store,
    setup,
    rekey,
    async storedKey(profile, agentId) {
      const principal = agentId === undefined ? OPERATOR : agent(agentId);
      return rekey(profile)
        .keyProvider.current(principal)
        .then(
          (current) => current.key,
          () => undefined,
        );
    },
    rememberSecrets,
    async connect(options = {}) {
      const sessionRekey = rekey(options.profile, options.actAs);
      const revealKeys = options.revealKeys ?? false;
      const server = createMcpServer({ rekey: sessionRekey, revealKeys, version: "test" });
      const client = new Client({ name: "rekey-mcp-test", version: "0.0.0" });
      const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
      await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
      const session: McpSession = {
        client,
        rekey: sessionRekey,
        async call(tool, args = {}) {
          await rememberSecrets();
          const result = (await client.callTool({ name: tool, arguments: args })) as CallToolResult;
          await rememberSecrets();
          seen.results.push({ tool, revealKeys, result });
          return result;
        },
        async close() {
          await client.close();
          await server.close();
        },
      };
      closers.push(() => session.close());
      return session;
    },
    async close() {
      for (const close of closers.reverse()) await close();
      await store.close();
      await sandbox.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  const registered = await setup.register({ name: "test operator" });
  seen.secrets.add(registered.recoveryCode);
  await rememberSecrets();
  return world;
}

/** The text of a result's first block. */
export function textOf(result: CallToolResult): string {
  const first = result.content[0];
  return first?.type === "text" ? first.text : "";
}

/** The facts of an `isError` result, read back from its one text block. */
export function errorOf(result: CallToolResult): {
  code: string;
  message: string;
  hint: string;
  [key: string]: unknown;
} {
  if (!result.isError || result.content.length !== 1 || result.content[0]?.type !== "text")
    throw new Error(`Not an error result with one text block: ${JSON.stringify(result)}`);
  const [first = "", ...rest] = textOf(result).split("\n");
  const headline = /^([A-Z_]+): (.*)$/.exec(first);
  if (!headline) throw new Error(`No "CODE: message" line: ${first}`);
  const facts: Record<string, unknown> = { code: headline[1], message: headline[2] };
  for (const line of rest) {
    const field = /^([a-z_]+): (.*)$/.exec(line);
    if (!field?.[1]) throw new Error(`Not a "name: value" line: ${line}`);
    const value = field[2] ?? "";
    facts[field[1]] = /^(\d+|\[.*\]|\{.*\})$/.test(value) ? JSON.parse(value) : value;
  }
  return facts as { code: string; message: string; hint: string };
}
