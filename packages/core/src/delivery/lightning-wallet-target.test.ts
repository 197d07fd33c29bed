import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import type { DeliveryPayload } from "./delivery-payload.js";
import { mountTinyDisk } from "./full-disk.test-helper.js";
import { deliverToLightningWallet } from "./lightning-wallet-target.js";
import { publicClientKey } from "./public-client.test-helper.js";

const clock = { now: () => Date.parse("2026-12-02T12:00:00.000Z") };
const newOperatorKey = `lf_${"N".repeat(43)}`;
const newAgentKey = `lf_${"A".repeat(43)}`;

/** `held`: the keys the store knows the principal had (the file's old key, when it is its). */
function payload(key: string, principal: string, held: string[] = []): DeliveryPayload {
  return {
    key,
    fingerprint: fingerprint(key),
    principal,
    faucet: "http://127.0.0.1:4000/api",
    heldFingerprints: held.map(fingerprint),
  };
}

async function refusal(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (error) {
    if (isRekeyError(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
  throw new Error("expected a refusal");
}

let root: string;
let home: string;
let file: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "rekey-lw-target-"));
  home = join(root, ".lightning-wallet");
  file = join(home, "credentials.json");
  await mkdir(home, { mode: 0o700 });
});

describe("the lightning-wallet target", () => {
  it("replaces only the principal's api_key and saved_at; active, the other entry, the recovery code and unknown fields stay", async () => {
    const original = {
      version: 1,
      api_url: "http://127.0.0.1:4000/api",
      active: "agent",
      operator: {
        api_key: `lf_${"o".repeat(43)}`,
        id: 12,
        name: "ops",
        recovery_code: `lfr_${"r".repeat(40)}`,
        saved_at: "2026-01-01T00:00:00.000Z",
      },
      agent: {
        api_key: `lf_${"a".repeat(43)}`,
        id: 7,
        name: "bot",
        saved_at: "2026-01-01T00:00:00.000Z",
        extra: { kept: true },
      },
      future_field: [1, 2, 3],
    };
    await writeFile(file, `${JSON.stringify(original, null, 2)}\n`, { mode: 0o600 });
    await deliverToLightningWallet(
      file,
      payload(newOperatorKey, "operator:12", [original.operator.api_key]),
      { clock },
    );
    const written = JSON.parse(await readFile(file, "utf8"));
    expect(written).toEqual({
      ...original,
      operator: {
        ...original.operator,
        api_key: newOperatorKey,
        saved_at: "2026-12-02T12:00:00.000Z",
      },
    });
    // The client's own layout: two-space JSON and a final newline, keys in their order.
    expect(await readFile(file, "utf8")).toBe(`${JSON.stringify(written, null, 2)}\n`);
    // active is "agent": the client still uses the agent's key; after an agent delivery, the new one.
    expect(publicClientKey({}, root)?.apiKey).toBe(original.agent.api_key);
    await deliverToLightningWallet(
      file,
      payload(newAgentKey, "agent:7", [original.agent.api_key]),
      {
        clock,
      },
    );
    expect(publicClientKey({ LIGHTNING_WALLET_HOME: home }, "/nowhere")).toEqual({
      apiKey: newAgentKey,
      type: "agent",
    });
    // The variable comes first, as in the client.
    expect(
      publicClientKey({ LIGHTNING_WALLET_API_KEY: "lf_env", LIGHTNING_WALLET_HOME: home }, root)
        ?.apiKey,
    ).toBe("lf_env");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readdir(home)).sort()).toEqual(["credentials.json"]);
  });

  it("creates a missing file (and its 0700 directory) that the client reads", async () => {
    const fresh = join(root, "fresh", "credentials.json");
    await deliverToLightningWallet(fresh, payload(newAgentKey, "agent:7"), { clock });
    expect(JSON.parse(await readFile(fresh, "utf8"))).toEqual({
      version: 1,
      api_url: "http://127.0.0.1:4000/api",
      active: "agent",
      agent: { api_key: newAgentKey, id: 7, saved_at: "2026-12-02T12:00:00.000Z" },
    });
    expect((await stat(join(root, "fresh"))).mode & 0o777).toBe(0o700);
    expect(publicClientKey({ LIGHTNING_WALLET_HOME: join(root, "fresh") }, root)?.apiKey).toBe(
      newAgentKey,
    );
  });

  it("gives a file without a valid active the delivered entry, so the client does not ignore it", async () => {
    await writeFile(
      file,
      JSON.stringify({ version: 1, operator: { api_key: "lf_old_old_old", saved_at: "x" } }),
      { mode: 0o600 },
    );
    await deliverToLightningWallet(
      file,
      payload(newOperatorKey, "operator:12", ["lf_old_old_old"]),
      { clock },
    );
    expect(publicClientKey({}, root)?.apiKey).toBe(newOperatorKey);
  });

  it("refuses an entry holding another principal's key, judged by the key (no id in the entry), and keeps that key", async () => {
    const alicesKey = `lf_${"z".repeat(43)}`;
    const alice = {
      version: 1,
      active: "operator",
      operator: { api_key: alicesKey, recovery_code: `lfr_${"c".repeat(40)}`, saved_at: "x" },
    };
    const text = `${JSON.stringify(alice, null, 2)}\n`;
    await writeFile(file, text, { mode: 0o600 });
    const ours = payload(newOperatorKey, "operator:1", [`lf_${"p".repeat(43)}`]);
    // A key the store holds for another principal: named, by fingerprint only.
    const named = await refusal(
      deliverToLightningWallet(
        file,
        { ...ours, keyOwners: { [fingerprint(alicesKey)]: "operator:2" } },
        { clock },
      ),
    );
    expect(named).toMatch(/^CONFIG_INVALID: .*holds the key of operator:2/);
    expect(named).toContain(fingerprint(alicesKey));
    expect(named).not.toContain(alicesKey);
    // A key the store does not know at all: refused too (it may be someone's only copy).
    expect(await refusal(deliverToLightningWallet(file, ours, { clock }))).toMatch(
      /^CONFIG_INVALID: .*a key rekey does not know as operator:1's/,
    );
    expect(await readFile(file, "utf8")).toBe(text);
    expect(publicClientKey({}, root)?.apiKey).toBe(alicesKey);
    // The same key delivered again, or an entry with no key, is written.
    await deliverToLightningWallet(file, payload(alicesKey, "operator:2"), { clock });
    expect(JSON.parse(await readFile(file, "utf8")).operator.api_key).toBe(alicesKey);
    await writeFile(file, JSON.stringify({ version: 1, active: "operator", operator: {} }), {
      mode: 0o600,
    });
    await deliverToLightningWallet(file, ours, { clock });
    expect(publicClientKey({}, root)?.apiKey).toBe(newOperatorKey);
  });

  it("refuses a link, a directory, an open file or directory, bad JSON, another format, another agent's entry, and leaves the file as it was", async () => {
    const cases: [string, () => Promise<string>, RegExp][] = [
      [
        "symlink",
        async () => {
          const real = join(root, "real.json");
          await writeFile(real, "{}", { mode: 0o600 });
          await symlink(real, file);
          return real;
        },
        /symbolic link/,
      ],
      [
        "directory",
        async () => {
          await mkdir(file);
          return file;
        },
        /is a directory/,
      ],
      [
        "world-readable",
        async () => {
          await writeFile(file, '{"version":1}', { mode: 0o644 });
          await chmod(file, 0o644);
          return file;
        },
        /mode 644/,
      ],
      [
        "bad JSON",
        async () => {
          await writeFile(file, "{not json", { mode: 0o600 });
          return file;
        },
        /not valid JSON/,
      ],
      [
        "version 2",
        async () => {
          await writeFile(file, '{"version":2,"active":"operator"}', { mode: 0o600 });
          return file;
        },
        /not a lightning-wallet credentials file/,
      ],
      [
        "another agent",
        async () => {
          await writeFile(
            file,
            JSON.stringify({
              version: 1,
              active: "agent",
              agent: { api_key: "lf_theirs_1234", id: 8, saved_at: "x" },
            }),
            { mode: 0o600 },
          );
          return file;
        },
        /belongs to agent 8, not agent 7/,
      ],
    ];
    for (const [name, arrange, message] of cases) {
      await (await import("node:fs/promises")).rm(home, { recursive: true, force: true });
      await mkdir(home, { mode: 0o700 });
      const watched = await arrange();
      const before = await readFile(watched, "utf8").catch(() => "(dir)");
      expect(
        await refusal(deliverToLightningWallet(file, payload(newAgentKey, "agent:7"), { clock })),
        name,
      ).toMatch(new RegExp(`^CONFIG_INVALID: .*${message.source}`));
      expect(await readFile(watched, "utf8").catch(() => "(dir)"), name).toBe(before);
    }
    await chmod(home, 0o755);
    await writeFile(file, "{}", { mode: 0o600 });
    expect(
      await refusal(deliverToLightningWallet(file, payload(newAgentKey, "agent:7"), { clock })),
    ).toMatch(/CONFIG_INVALID: .*mode 755/);
  });

  it("on a full disk reports STORE_UNAVAILABLE (ENOSPC), keeps the old file and leaves no temp file", async () => {
    const disk = mountTinyDisk() ?? {
      dir: await mkdtemp(join(tmpdir(), "rekey-ro-")),
      unmount() {},
    };
    const lw = join(disk.dir, "credentials.json");
    try {
      const original = `${JSON.stringify({ version: 1, active: "agent", agent: { api_key: "lf_old_old_old", id: 7, saved_at: "x" } }, null, 2)}\n`;
      await writeFile(lw, original, { mode: 0o600 });
      if (process.getuid?.() === 0) {
        await writeFile(join(disk.dir, "filler"), Buffer.alloc(60 * 1024)).catch(() => undefined);
      } else {
        await chmod(disk.dir, 0o500);
      }
      expect(
        await refusal(
          deliverToLightningWallet(lw, payload(newAgentKey, "agent:7", ["lf_old_old_old"]), {
            clock,
          }),
        ),
      ).toMatch(/^STORE_UNAVAILABLE: Cannot write .*(ENOSPC|EACCES)/);
      await chmod(disk.dir, 0o700);
      expect(await readFile(lw, "utf8")).toBe(original);
      expect((await readdir(disk.dir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    } finally {
      disk.unmount();
    }
  });
});
