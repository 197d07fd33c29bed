import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type EngineFixture, startEngineFixture } from "./engine.test-helper.js";

let fixture: EngineFixture;

beforeEach(async () => {
  fixture = await startEngineFixture({ store: "file" });
});

afterEach(async () => {
  await fixture.close();
});

/** Changes one character of the sealed key of `recordPrincipal`, as an edit of the file would. */
async function tamperWith(recordPrincipal: string): Promise<void> {
  const path = join(fixture.dir, "credentials.json");
  const document = JSON.parse(await readFile(path, "utf8"));
  const principals = document.data.principals as Record<string, { key: string }>;
  const id = Object.keys(principals).find((name) => name.endsWith(`#${recordPrincipal}`));
  const record = principals[id ?? ""];
  if (record === undefined) throw new Error(`no record of ${recordPrincipal}`);
  const at = record.key.length - 5;
  record.key = `${record.key.slice(0, at)}${record.key[at] === "A" ? "B" : "A"}${record.key.slice(at + 1)}`;
  await writeFile(`${path}.edit`, JSON.stringify(document), { mode: 0o600 });
  await rename(`${path}.edit`, path);
}

describe("checkKeys", () => {
  it("reports a key that does not decrypt and checks the others (doctor aborted on it)", async () => {
    const rekey = fixture.rekey();
    await rekey.register({});
    const created = await rekey.createAgent({ name: "worker" });
    await tamperWith(`agent:${created.agentId}`);
    const checks = await fixture.rekey().checkKeys();
    expect(checks.find((check) => check.principal === "operator:1")).toMatchObject({
      alive: true,
      current: true,
    });
    const broken = checks.find((check) => check.principal === `agent:${created.agentId}`);
    expect(broken?.alive).toBeUndefined();
    expect(broken?.error).toContain("does not decrypt");
  });
});
