import { afterEach, describe, expect, it } from "vitest";
import { OPERATOR } from "../principal.js";
import {
  Crash,
  crashingAt,
  type EngineFixture,
  settle,
  startEngineFixture,
} from "./engine.test-helper.js";

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe("status after a crash that ends in KEY_LOST", () => {
  it("answers the same way every time: the status document with the loss", async () => {
    fixture = await startEngineFixture({ sandbox: { requestIdSupport: false } });
    const crashing = fixture.rekey({ hooks: crashingAt("upstream-replied") });
    await crashing.register({});
    expect(await settle(crashing.rotateKey())).toBeInstanceOf(Crash);

    // The first status resolves the unfinished rotation (and finds the key lost); the second
    // reads the recorded loss. Both are the same document (CLI --json, HTTP, MCP show it).
    const next = fixture.rekey();
    const first = await settle(next.status());
    const second = await settle(next.status());
    const third = await settle(fixture.rekey().status());
    for (const status of [first, second, third]) {
      expect(status).toMatchObject({
        principal: OPERATOR,
        hasKey: false,
        keyLost: { recovery: expect.stringMatching(/rekey recover/) },
      });
    }
    expect((await next.history()).filter((entry) => entry.outcome === "key_lost")).toHaveLength(1);
  });
});
