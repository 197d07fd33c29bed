import { describe, expect, it } from "vitest";
import {
  ok,
  refused,
  registerOperator,
  startOnTestClock,
  text,
} from "./conformance.test-helper.js";
import { type FaultSpec, parseFaultSpec } from "./faults.js";
import { startSandbox } from "./server.js";

async function withFaults(
  faults: FaultSpec[],
  test: (url: string, stats: () => { rotations: number }) => Promise<void>,
) {
  const { sandbox, url } = await startOnTestClock({ faults });
  try {
    await test(url, sandbox.stats);
  } finally {
    await sandbox.close();
  }
}

function rawPost(url: string, body: unknown): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("fault injection", () => {
  it("drop_after_commit: the client sees a socket error, the rotation happened", async () => {
    await withFaults(
      [{ action: "regenerate_operator_key", nth: 1, kind: "drop_after_commit" }],
      async (url, stats) => {
        const operator = await registerOperator(url);
        const request = {
          action: "regenerate_operator_key",
          api_key: operator.apiKey,
          request_id: "lost-reply",
        };
        await expect(rawPost(url, request)).rejects.toThrow();
        expect(stats().rotations).toBe(1);
        await refused(url, { action: "whoami", api_key: operator.apiKey }, "invalid_api_key");
        // The retry with the same request_id gets the reply that was lost.
        const retried = await ok(url, request);
        await ok(url, { action: "whoami", api_key: text(retried, "api_key") });
        expect(stats().rotations).toBe(1);
      },
    );
  });

  it("status_500 and status_503 answer that status and change nothing", async () => {
    await withFaults(
      [
        { action: "regenerate_operator_key", nth: 1, kind: "status_500" },
        { action: "regenerate_operator_key", nth: 2, kind: "status_503" },
      ],
      async (url, stats) => {
        const operator = await registerOperator(url);
        const request = { action: "regenerate_operator_key", api_key: operator.apiKey };
        expect((await rawPost(url, request)).status).toBe(500);
        expect((await rawPost(url, request)).status).toBe(503);
        expect(stats().rotations).toBe(0);
        await ok(url, { action: "whoami", api_key: operator.apiKey });
        await ok(url, request);
        expect(stats().rotations).toBe(1);
      },
    );
  });

  it("delay: the rotation is committed before the late reply arrives", async () => {
    await withFaults(
      [{ action: "regenerate_operator_key", nth: 1, kind: "delay", delayMs: 1500 }],
      async (url) => {
        const operator = await registerOperator(url);
        let replied = false;
        const pending = rawPost(url, {
          action: "regenerate_operator_key",
          api_key: operator.apiKey,
        }).then(async (response) => {
          replied = true;
          return (await response.json()) as Record<string, unknown>;
        });
        // Poll until the old key is dead: the commit happens before the wait.
        let oldKeyDead = false;
        while (!oldKeyDead) {
          const reply = await rawPost(url, { action: "whoami", api_key: operator.apiKey });
          oldKeyDead = ((await reply.json()) as { code?: string }).code === "invalid_api_key";
        }
        expect(replied).toBe(false);
        const reply = await pending;
        await ok(url, { action: "whoami", api_key: text(reply, "api_key") });
      },
    );
  });

  it("malformed_body: HTTP 200 with text that is not JSON, after committing", async () => {
    await withFaults(
      [{ action: "regenerate_operator_key", nth: 1, kind: "malformed_body" }],
      async (url, stats) => {
        const operator = await registerOperator(url);
        const response = await rawPost(url, {
          action: "regenerate_operator_key",
          api_key: operator.apiKey,
        });
        expect(response.status).toBe(200);
        const body = await response.text();
        expect(() => JSON.parse(body)).toThrow();
        expect(body).not.toMatch(/lf_/);
        expect(stats().rotations).toBe(1);
        await refused(url, { action: "whoami", api_key: operator.apiKey }, "invalid_api_key");
      },
    );
  });

  it("omit_key: a success reply with no key, the old key dead; request_id gets the key back", async () => {
    await withFaults(
      [
        { action: "regenerate_operator_key", nth: 1, kind: "omit_key" },
        { action: "regenerate_operator_key", nth: 2, kind: "omit_key" },
      ],
      async (url, stats) => {
        const lost = await registerOperator(url);
        const noKey = await ok(url, { action: "regenerate_operator_key", api_key: lost.apiKey });
        expect(noKey).not.toHaveProperty("api_key");
        expect(noKey).toHaveProperty("cooldown_until");
        await refused(url, { action: "whoami", api_key: lost.apiKey }, "invalid_api_key");

        const saved = await registerOperator(url);
        const request = {
          action: "regenerate_operator_key",
          api_key: saved.apiKey,
          request_id: "omit",
        };
        expect(await ok(url, request)).not.toHaveProperty("api_key");
        const replayed = await ok(url, request);
        await ok(url, { action: "whoami", api_key: text(replayed, "api_key") });
        expect(stats().rotations).toBe(2);
      },
    );
  });

  it("counts calls per action, so only the Nth call fails", async () => {
    await withFaults([{ action: "whoami", nth: 2, kind: "status_500" }], async (url) => {
      const operator = await registerOperator(url);
      const whoami = { action: "whoami", api_key: operator.apiKey };
      await ok(url, { action: "get_balance", api_key: operator.apiKey });
      expect((await rawPost(url, whoami)).status).toBe(200);
      expect((await rawPost(url, whoami)).status).toBe(500);
      expect((await rawPost(url, whoami)).status).toBe(200);
    });
  });

  it("refuses invalid fault specs at start", async () => {
    await expect(
      startSandbox({ faults: [{ action: "whoami", nth: 0, kind: "status_500" }] }),
    ).rejects.toThrow(/nth/);
    await expect(
      startSandbox({ faults: [{ action: "whoami", nth: 1, kind: "delay" }] }),
    ).rejects.toThrow(/delay/);
  });
});

describe("parseFaultSpec", () => {
  it("reads action:nth:kind[:delayMs]", () => {
    expect(parseFaultSpec("regenerate_operator_key:1:drop_after_commit")).toEqual({
      action: "regenerate_operator_key",
      nth: 1,
      kind: "drop_after_commit",
    });
    expect(parseFaultSpec("whoami:2:delay:3000")).toEqual({
      action: "whoami",
      nth: 2,
      kind: "delay",
      delayMs: 3000,
    });
  });

  it("rejects malformed specs with the expected form", () => {
    for (const spec of [
      "whoami",
      "whoami:1",
      "whoami:x:status_500",
      "whoami:-1:status_500",
      "whoami:1:explode",
      "whoami:1:delay",
      "whoami:1:status_500:5",
      "whoami:1:delay:5:6",
    ]) {
      expect(() => parseFaultSpec(spec), spec).toThrow(/invalid fault/);
    }
  });
});

describe("malformed-reply mode (rewriteReply)", () => {
  it("does the work, then sends what the rewriter returns; undefined keeps the reply", async () => {
    const seen: string[] = [];
    const sandbox = await startSandbox({
      testClock: true,
      rewriteReply: (action, reply) => {
        seen.push(`${action}:${reply.status}`);
        if (action === "regenerate_operator_key") return { status: 200, body: [1, "two"] };
        if (action === "whoami") return { status: 502, text: "<html>bad gateway</html>" };
        return undefined;
      },
    });
    try {
      const operator = await registerOperator(sandbox.url);
      const rotated = await rawPost(sandbox.url, {
        action: "regenerate_operator_key",
        api_key: operator.apiKey,
      });
      expect(await rotated.json()).toEqual([1, "two"]);
      expect(sandbox.stats().rotations).toBe(1);
      const whoami = await rawPost(sandbox.url, { action: "whoami", api_key: operator.apiKey });
      expect(whoami.status).toBe(502);
      expect(await whoami.text()).toBe("<html>bad gateway</html>");
      expect(seen).toEqual(["register:200", "regenerate_operator_key:200", "whoami:200"]);
    } finally {
      await sandbox.close();
    }
  });
});
