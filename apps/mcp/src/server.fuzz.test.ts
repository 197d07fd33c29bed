import { CallToolResultSchema, ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { ERROR_CODES } from "@rekey/core";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type McpSession, seen, startWorld, type World } from "./world.test-helper.js";

// Property-based fuzzing of the tools' arguments through a real SDK Client, against the real
// core, a real file store and the sandbox. Whatever a model sends: a tool result (an error
// result carries a code from core's closed set, never INTERNAL) or a JSON-RPC -32602/-32601,
// never -32603, and no raw key in any output. Runs: REKEY_FUZZ_RUNS (small in CI).
const RUNS = Number(process.env.REKEY_FUZZ_RUNS ?? "40");
const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);
const RAW_KEY = /lf_[A-Za-z0-9_-]{20,}/;

let world: World;
let session: McpSession;
const logs: string[] = [];

beforeAll(async () => {
  world = await startWorld();
  await world.setup.createAgent({ name: "fuzzed" });
  session = await world.connect();
});
afterAll(async () => {
  await world.close();
});

const toolNames = fc.oneof(
  fc.constantFrom("rotate_api_key", "get_key_status", "list_agents", "whoami"),
  fc.string({ maxLength: 30 }),
);
const agentIds = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 2 }),
);
const argumentValues = fc.oneof(
  fc.constant(undefined),
  fc.record({ agent_id: agentIds }, { requiredKeys: [] }),
  fc.record({ agent_id: agentIds, extra: fc.anything() }, { requiredKeys: [] }),
  fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  fc.anything({ maxDepth: 2 }),
);

describe("the MCP tools under fuzzing", () => {
  it("answer any arguments with a result or -32602, never a crash or a key", async () => {
    await fc.assert(
      fc.asyncProperty(toolNames, argumentValues, async (name, args) => {
        const params = args === undefined ? { name } : { name, arguments: args };
        const outcome = await session.client
          .request({ method: "tools/call", params } as never, CallToolResultSchema)
          .then(
            (result) => ({ result }),
            (error: unknown) => ({ error }),
          );
        // Keep cooldowns from blocking every later rotation.
        world.clock.advance(61 * 60_000);
        const printed = JSON.stringify(outcome, (_key, value: unknown) =>
          value instanceof Error ? { ...value, message: value.message } : value,
        );
        const context = `${name} ${JSON.stringify(args)} -> ${printed.slice(0, 300)}`;
        if ("error" in outcome) {
          expect(outcome.error, context).toBeInstanceOf(McpError);
          expect([ErrorCode.InvalidParams, ErrorCode.MethodNotFound], context).toContain(
            (outcome.error as McpError).code,
          );
        } else if (outcome.result.isError === true) {
          const block = outcome.result.content[1];
          // The SDK's own refusals (unknown tool, input schema) carry only text; ours a code.
          if (block?.type === "text") {
            const code = (JSON.parse(block.text) as { error: { code: string } }).error.code;
            expect(KNOWN_CODES.has(code), context).toBe(true);
            expect(code, context).not.toBe("INTERNAL");
          }
        }
        expect(RAW_KEY.test(printed), context).toBe(false);
        logs.push(printed);
      }),
      { numRuns: RUNS },
    );
    await world.rememberSecrets();
    for (const line of logs) {
      for (const secret of seen.secrets) expect(line.includes(secret)).toBe(false);
    }
  }, 120_000);
});
