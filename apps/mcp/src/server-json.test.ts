import { readFile } from "node:fs/promises";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";

// server.json is what the MCP registry lists; the registry checks it against its published
// schema and checks npm ownership through package.json's `mcpName`.
async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(new URL(path, import.meta.url), "utf8")) as T;
}

interface ServerJson {
  $schema: string;
  name: string;
  version: string;
  repository?: { url: string; source: string; subfolder?: string };
  packages: Array<{
    registryType: string;
    identifier: string;
    version: string;
    environmentVariables: Array<{ name: string; description: string }>;
  }>;
}

describe("server.json", () => {
  it("is valid against the registry's published schema (the copy in schema/)", async () => {
    const server = await readJson<ServerJson>("../server.json");
    const schema = await readJson<{ $id: string }>("../schema/server.schema.2025-12-11.json");
    expect(server.$schema).toBe(schema.$id);
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const validate = ajv.compile(schema);
    expect(validate(server), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it("agrees with package.json: name, mcpName, version and repository", async () => {
    const server = await readJson<ServerJson>("../server.json");
    const manifest = await readJson<{
      name: string;
      mcpName: string;
      version: string;
      repository: { url: string; directory: string };
    }>("../package.json");
    expect(manifest.mcpName).toBe(server.name);
    // One version, package.json's: `pnpm --filter @rekey/mcp run sync-server-json` copies it.
    expect(server.version).toBe(manifest.version);
    const npm = server.packages.find((entry) => entry.registryType === "npm");
    expect(npm).toMatchObject({ identifier: manifest.name, version: manifest.version });
    expect(manifest.repository.url).toContain(server.repository?.url.replace("https://", ""));
    expect(server.repository?.subfolder).toBe(manifest.repository.directory);
  });

  it("describes REKEY_STORE with every store it takes, postgres:// included", async () => {
    const server = await readJson<ServerJson>("../server.json");
    const store = server.packages[0]?.environmentVariables.find((v) => v.name === "REKEY_STORE");
    expect(store?.description).toContain("postgres://");
  });
});
