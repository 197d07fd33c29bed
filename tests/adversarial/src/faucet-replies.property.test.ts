import {
  createFaucetClient,
  createMemoryStore,
  createRekey,
  ERROR_CODES,
  type FaucetClient,
  isRekeyError,
} from "@rekey/core";
import { type RewrittenReply, type RunningSandbox, startSandbox } from "@rekey/sandbox";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUDGET, SEED } from "./budget.js";
import { expectNoRawKeyRecorded, RAW_KEY, record } from "./transcript.js";

/** How the sandbox's reply to one call is spoiled, decided by fast-check. */
type Recipe =
  | { kind: "replace"; status: number; body: unknown }
  | { kind: "text"; status: number; text: string }
  | { kind: "mutate"; index: number; value: unknown; remove: boolean }
  | { kind: "echo-key-in-error"; status: number };

const status = fc.constantFrom(
  200,
  200,
  200,
  201,
  204,
  400,
  401,
  403,
  404,
  409,
  429,
  500,
  502,
  503,
);
const recipe: fc.Arbitrary<Recipe> = fc.oneof(
  fc.record({ kind: fc.constant("replace" as const), status, body: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({ kind: fc.constant("text" as const), status, text: fc.string({ maxLength: 300 }) }),
  fc.record({
    kind: fc.constant("mutate" as const),
    index: fc.nat(),
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.string({ maxLength: 40 }).map((text) => `\u001b[31m${text}\n\r\u0007`),
      fc.constant("x".repeat(100_000)),
    ),
    remove: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("echo-key-in-error" as const), status }),
);

function spoil(recipe: Recipe, body: Readonly<Record<string, unknown>>): RewrittenReply {
  switch (recipe.kind) {
    case "replace":
      return { status: recipe.status, body: recipe.body };
    case "text":
      return { status: recipe.status, text: recipe.text };
    case "mutate": {
      const copy: Record<string, unknown> = { ...body };
      const keys = Object.keys(copy);
      const key = keys[recipe.index % Math.max(keys.length, 1)] ?? "success";
      if (recipe.remove) delete copy[key];
      else copy[key] = recipe.value;
      return { status: 200, body: copy };
    }
    case "echo-key-in-error": {
      // An upstream that puts a key into its error text: it must not reach any output.
      const key = Object.values(body).find(
        (value) => typeof value === "string" && RAW_KEY.test(value),
      );
      return {
        status: recipe.status,
        body: { success: false, code: "internal", error: `failed for ${String(key ?? "lf_")}` },
      };
    }
  }
}

const CALLS = [
  "whoami",
  "get_balance",
  "list_agents",
  "create_agent",
  "fund_agent",
  "regenerate_operator_key",
  "regenerate_agent_key",
  "withdraw",
  "engine:rotate",
] as const;

describe("faucet replies spoiled by the sandbox's malformed-reply mode", () => {
  let sandbox: RunningSandbox;
  let armed: { action: string; recipe: Recipe } | undefined;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const codes: Record<string, number> = {};

  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    sandbox = await startSandbox({
      port: 0,
      rewriteReply: (action, reply) => {
        const plan = armed;
        if (plan === undefined || plan.action !== action) return undefined;
        armed = undefined;
        return spoil(plan.recipe, reply.body);
      },
    });
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    await sandbox.close();
    console.log(`faucet replies: outcomes by code ${JSON.stringify(codes)}`);
  });

  /** One call of `call` with its reply spoiled; resolves to what a caller would see. */
  async function callSpoiled(
    client: FaucetClient,
    call: (typeof CALLS)[number],
    recipe: Recipe,
  ): Promise<unknown> {
    const operator = await client.register({});
    const agent = await client.createAgent(operator.apiKey, { name: "fuzz" });
    const action = call === "engine:rotate" ? "regenerate_operator_key" : call;
    armed = { action, recipe };
    switch (call) {
      case "whoami":
        return client.whoami(operator.apiKey);
      case "get_balance":
        return client.getBalance(operator.apiKey);
      case "list_agents":
        return client.listAgents(operator.apiKey);
      case "create_agent":
        return client.createAgent(operator.apiKey, { name: "second" });
      case "fund_agent":
        return client.fundAgent(operator.apiKey, { agentId: agent.agentId, amountSats: 1 });
      case "regenerate_operator_key":
        return client.regenerateOperatorKey(operator.apiKey, { requestId: "fuzz-1" });
      case "regenerate_agent_key":
        return client.regenerateAgentKey(operator.apiKey, { agentId: agent.agentId });
      case "withdraw":
        return client.withdraw(operator.apiKey, { amountSats: 1 });
      case "engine:rotate": {
        armed = undefined;
        const rekey = createRekey({
          store: createMemoryStore(),
          surface: "library",
          baseUrl: sandbox.url,
          env: {},
        });
        try {
          await rekey.register({});
          armed = { action, recipe };
          return await rekey.rotateKey({ force: true });
        } finally {
          await rekey.close();
        }
      }
    }
  }

  it("every failure is a closed-set error (INTERNAL only for a refusal it cannot read), nothing escapes", async () => {
    const client = createFaucetClient({
      baseUrl: sandbox.url,
      requestTimeoutMs: 5000,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
    });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...CALLS), recipe, async (call, spoiled) => {
        const result = await callSpoiled(client, call, spoiled).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        armed = undefined;
        const label = `${call} ${JSON.stringify(spoiled).slice(0, 300)}`;
        if ("error" in result) {
          const error = result.error;
          expect(isRekeyError(error), `${label}: ${String(error)}`).toBe(true);
          const code = (error as { code: string }).code;
          expect(ERROR_CODES as readonly string[]).toContain(code);
          if (code === "INTERNAL") {
            // Core's one deliberate INTERNAL for upstream input: a refusal (`success:false`)
            // whose code and text it does not recognise. Anything else INTERNAL is a bug.
            expect(String((error as Error).message), `${label}: ${String(error)}`).toMatch(
              /^The faucet failed \S+ with an unrecognised error/,
            );
          }
          codes[code] = (codes[code] ?? 0) + 1;
          record(`${label} error`, JSON.stringify(error));
          record(`${label} message`, String((error as Error).message));
        } else {
          codes.ok = (codes.ok ?? 0) + 1;
        }
      }),
      { numRuns: BUDGET.faucetReplies, seed: SEED, endOnFailure: true },
    );
    expect(unhandled).toEqual([]);
  });

  it("no error repeated a key the faucet sent", () => {
    expectNoRawKeyRecorded();
  });
});
