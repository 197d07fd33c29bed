import { afterEach, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { agent } from "../principal.js";
import { openKey } from "../store/encryption/sealed-key.js";
import type { DeepReadonly, StoreData } from "../store/types.js";
import { type EngineFixture, startEngineFixture } from "./engine.test-helper.js";

let fixture: EngineFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** Every raw secret the store has ever held during the scenario. */
function secretsIn(data: DeepReadonly<StoreData>, into: Set<string>): void {
  for (const record of Object.values(data.principals)) {
    if (record.key !== undefined) into.add(openKey(record.key));
  }
}

function render(value: unknown): string {
  if (!isRekeyError(value)) return String(value);
  return [
    value.message,
    value.hint,
    value.stack,
    JSON.stringify(value),
    JSON.stringify(value.details),
    String(value),
  ].join("\n");
}

it("no error, result or audit entry of any engine path carries a raw key or recovery code", async () => {
  const current = await startEngineFixture({
    sandbox: { faults: [{ action: "regenerate_agent_key", nth: 2, kind: "drop_after_commit" }] },
  });
  fixture = current;
  const secrets = new Set<string>();
  const texts: string[] = [];
  const record = async (work: () => Promise<unknown>) => {
    try {
      texts.push(JSON.stringify(await work()));
    } catch (error) {
      texts.push(render(error));
    }
    secretsIn((await current.store.read()).data, secrets);
  };

  const rekey = current.rekey();
  const registered = await rekey.register({ name: "ops" });
  secrets.add(registered.recoveryCode);
  texts.push(JSON.stringify({ ...registered, recoveryCode: undefined }));
  secretsIn((await current.store.read()).data, secrets);
  const { agentId } = await rekey.createAgent({ name: "worker" });
  secretsIn((await current.store.read()).data, secrets);
  const oldOperatorKey = [...secrets][0] ?? "";

  await record(() => rekey.rotateKey());
  await record(() => rekey.rotateKey()); // cooldown
  await record(() => rekey.rotateKey({ target: agent(agentId) }));
  await record(() => rekey.rotateKey({ target: agent(agentId), force: true })); // dropped reply, recovered
  await record(() => rekey.rotateKey({ target: agent(999_999) })); // not found
  await record(() => rekey.rotateKey({ dryRun: true }));
  await record(() => rekey.login(oldOperatorKey)); // dead key
  await record(() => rekey.login("not a key"));
  await record(() => rekey.recover("lfr_wrongwrongwrongwrongwrongwrongwrongwrongwro"));
  await record(() => rekey.withdraw({ amountSats: 10 })); // cooldown
  await record(() => rekey.status());
  await record(() => rekey.listAgents());
  await record(() => rekey.whoami());
  await record(() => rekey.health());
  await record(() => current.rekey({ profile: "agent-view" }).login([...secrets].at(-1) ?? ""));
  await record(() =>
    current.rekey({ profile: "agent-view" }).rotateKey({ target: agent(agentId + 1) }),
  );
  await record(() => rekey.history());

  expect(secrets.size).toBeGreaterThanOrEqual(5);
  const everything = texts.join("\n");
  for (const secret of secrets)
    expect(everything.includes(secret), "a raw secret leaked").toBe(false);
  expect(everything).not.toMatch(/\blfr?_[A-Za-z0-9_-]{43}\b/);
});
