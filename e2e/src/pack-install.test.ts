import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskBytes, installedPackages, run, type Started, start } from "./processes.js";

// What a new user gets from the registry: every package packed with `pnpm pack` (as
// `pnpm publish` would), each app's tarball installed with plain npm into an empty directory
// with an empty HOME, and the installed commands run as the READMEs type them. Run by
// `pnpm test:install` (and .ci/run) after a build. The libraries' install reaches the npm
// registry for their dependencies (zod, pg, proper-lockfile); the apps need nothing.

const repo = fileURLToPath(new URL("../../", import.meta.url));
const APPS = { cli: "apps/cli", mcp: "apps/mcp", http: "apps/http" } as const;
const LIBRARIES = {
  core: "packages/core",
  sandbox: "packages/sandbox",
  "store-postgres": "packages/store-postgres",
} as const;
type Name = keyof typeof APPS | keyof typeof LIBRARIES;
/** An installed app is its own bundle and nothing else: well under this. */
const MAX_APP_BYTES = 8 * 1024 * 1024;

let work: string;
let home: string;
let env: NodeJS.ProcessEnv;
const tarballs = {} as Record<Name, string>;
const installs = {} as Record<keyof typeof APPS | "libraries", string>;
const running: Started[] = [];

async function version(name: Name): Promise<string> {
  const path = join(repo, { ...APPS, ...LIBRARIES }[name], "package.json");
  return (JSON.parse(await readFile(path, "utf8")) as { version: string }).version;
}

function bin(install: keyof typeof installs, command: string): string {
  return join(installs[install], "node_modules", ".bin", command);
}

async function npmInstall(dir: string, packed: string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const installed = await run("npm", ["install", "--no-audit", "--no-fund", ...packed], {
    cwd: dir,
    env,
  });
  expect(installed.stderr.replace(/^npm (notice|warn).*\n?/gm, "")).toBe("");
  expect(installed.code).toBe(0);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "rekey-pack-test-"));
  home = join(work, "home");
  await mkdir(home, { mode: 0o700 });
  // An empty HOME (so an empty npm cache and no ~/.config/rekey), and only node on the PATH.
  env = {
    PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
    HOME: home,
    npm_config_update_notifier: "false",
  };
  const packed = join(work, "tarballs");
  for (const [name, dir] of Object.entries({ ...APPS, ...LIBRARIES })) {
    const result = await run("pnpm", ["pack", "--pack-destination", packed], {
      cwd: join(repo, dir),
      env: process.env,
    });
    expect(result.code, result.stderr).toBe(0);
    tarballs[name as Name] = result.stdout.trim().split("\n").at(-1) ?? "";
    expect(existsSync(tarballs[name as Name])).toBe(true);
  }
  for (const app of Object.keys(APPS) as Array<keyof typeof APPS>) {
    installs[app] = join(work, app);
    await npmInstall(installs[app], [tarballs[app]]);
  }
  installs.libraries = join(work, "libraries");
  await npmInstall(installs.libraries, [
    tarballs.core,
    tarballs["store-postgres"],
    tarballs.sandbox,
  ]);
}, 180_000);

afterAll(async () => {
  for (const child of running) await child.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the packed tarballs, installed with npm", () => {
  it("each app installs alone: no dependency, a few MB", async () => {
    for (const app of Object.keys(APPS) as Array<keyof typeof APPS>) {
      const nodeModules = join(installs[app], "node_modules");
      const packages = await installedPackages(nodeModules);
      const bytes = await diskBytes(nodeModules);
      console.log(
        `@rekey/${app}: ${packages.length} package(s) installed, ${(bytes / 1024 / 1024).toFixed(1)} MB`,
      );
      // Only the app itself: no express, no hono, no pg (an optional peer) from the registry.
      expect(packages).toEqual([`@rekey/${app}`]);
      expect(bytes).toBeLessThan(MAX_APP_BYTES);
      // The bundled packages' licences travel with them.
      const installed = join(nodeModules, "@rekey", app);
      expect(await readdir(installed)).toEqual(expect.arrayContaining(["LICENSE", "README.md"]));
      const notices = await readFile(join(installed, "dist", "THIRD_PARTY_LICENSES.md"), "utf8");
      expect(notices).toMatch(/^## zod@\S+ \(MIT\)$/m);
    }
  });

  it("asked for a postgres:// store without pg installed, an app says what to install", async () => {
    const refused = await run(bin("cli", "rekey"), ["status"], {
      env: { ...env, REKEY_STORE: "postgres://rekey@127.0.0.1:1/rekey" },
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("A postgres:// store needs the pg package");
    expect(refused.stderr).toContain("npm install -g pg");
  });

  it("the libraries install together and load, with their types", async () => {
    const nodeModules = join(installs.libraries, "node_modules");
    const packages = await installedPackages(nodeModules);
    console.log(
      `@rekey/core + store-postgres + sandbox: ${packages.length} packages installed, ${((await diskBytes(nodeModules)) / 1024 / 1024).toFixed(1)} MB`,
    );
    for (const name of Object.keys(LIBRARIES) as Array<keyof typeof LIBRARIES>) {
      const dir = join(nodeModules, "@rekey", name);
      const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as {
        exports: Record<string, { types: string; import: string }>;
      };
      for (const [subpath, target] of Object.entries(manifest.exports)) {
        expect(existsSync(join(dir, target.types)), `${name} ${subpath} types`).toBe(true);
        const specifier = `@rekey/${name}${subpath.slice(1)}`;
        // ./testing needs vitest, a test-time peer: only check it resolves.
        if (subpath === "./testing") continue;
        const loaded = await run(
          process.execPath,
          [
            "--input-type=module",
            "-e",
            `console.log(Object.keys(await import("${specifier}")).length)`,
          ],
          { cwd: installs.libraries, env },
        );
        expect(loaded.stderr).toBe("");
        expect(Number(loaded.stdout)).toBeGreaterThan(0);
      }
      expect(await readdir(dir)).toEqual(expect.arrayContaining(["LICENSE", "README.md"]));
    }
  });

  it("rekey, rekey-sandbox, rekey-mcp and rekey-http run as the READMEs type them", async () => {
    for (const [install, command] of [
      ["cli", "rekey"],
      ["mcp", "rekey-mcp"],
      ["http", "rekey-http"],
    ] as const) {
      const answered = await run(bin(install, command), ["--version"], { env });
      expect(answered, command).toMatchObject({ code: 0, stdout: `${await version(install)}\n` });
    }

    const sandboxVersion = await run(bin("libraries", "rekey-sandbox"), ["-v"], { env });
    expect(sandboxVersion.stdout).toBe(`${await version("sandbox")}\n`);
    const document = await run(bin("http", "rekey-http"), ["openapi"], { env });
    expect(JSON.parse(document.stdout)).toMatchObject({ openapi: "3.1.0" });

    const sandbox = await start(bin("libraries", "rekey-sandbox"), ["--port", "0"], {
      env,
      ready: /listening on (\S+)/,
    });
    running.push(sandbox);
    const userEnv = { ...env, REKEY_API_URL: sandbox.match[1] };

    // The operator registers and rotates with the CLI; the store is ~/.config/rekey.
    const registered = await run(
      bin("cli", "rekey"),
      ["register", "--recovery-code-file", join(work, "recovery.txt"), "--json"],
      { env: userEnv },
    );
    expect(registered.code, registered.stderr).toBe(0);
    const rotated = await run(bin("cli", "rekey"), ["rotate", "--yes", "--json"], {
      env: userEnv,
    });
    expect(rotated.code, rotated.stderr).toBe(0);
    const fingerprint = (JSON.parse(rotated.stdout) as { fingerprint: string }).fingerprint;
    expect(fingerprint).toMatch(/^fp:/);

    // An agent host spawns rekey-mcp over stdio and sees the same key.
    const client = new Client({ name: "pack-test", version: "1.0.0" });
    await client.connect(
      new StdioClientTransport({
        command: bin("mcp", "rekey-mcp"),
        env: userEnv as Record<string, string>,
        stderr: "pipe",
      }),
    );
    try {
      const tools = (await client.listTools()).tools.map((tool) => tool.name);
      expect(tools).toContain("rotate_api_key");
      const status = await client.callTool({ name: "get_key_status", arguments: {} });
      expect(status.isError).toBeFalsy();
      expect(status.structuredContent).toMatchObject({ fingerprint });
    } finally {
      await client.close();
    }

    // A service reads the status over HTTP with a bearer token.
    const token = randomBytes(24).toString("base64url");
    const hashed = await run(bin("http", "rekey-http"), ["hash-token"], {
      env: userEnv,
      input: `${token}\n`,
    });
    expect(hashed.stdout.trim()).toBe(createHash("sha256").update(token).digest("hex"));
    const http = await start(bin("http", "rekey-http"), ["--port", "0"], {
      env: {
        ...userEnv,
        REKEY_HTTP_TOKENS: JSON.stringify([
          { name: "deploy", sha256: hashed.stdout.trim(), scopes: ["status"] },
        ]),
      },
      ready: /^(http:\/\/\S+)$/m,
    });
    running.push(http);
    const response = await fetch(`${http.match[1]}/v1/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ fingerprint });
  });
});

/** A host's way to start a server: what the MCP README's configurations say. */
interface HostServer {
  host: string;
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** Every MCP host configuration in apps/mcp/README.md: JSON blocks and `claude mcp add` lines. */
async function readmeHostServers(): Promise<HostServer[]> {
  const readme = await readFile(join(repo, "apps/mcp/README.md"), "utf8");
  const servers: HostServer[] = [];
  for (const [, host, language, body] of readme.matchAll(
    /\*\*([^*]+)\*\*[^\n]*\n\n```(json|sh)\n([\s\S]*?)```/g,
  )) {
    if (language === "json") {
      const config = JSON.parse(body ?? "") as Record<
        string,
        Record<string, { command: string; args?: string[]; env?: Record<string, string> }>
      >;
      const entries = config.mcpServers ?? config.servers ?? {};
      for (const entry of Object.values(entries)) {
        servers.push({
          host: host ?? "",
          command: entry.command,
          args: entry.args ?? [],
          env: entry.env ?? {},
        });
      }
      continue;
    }
    for (const line of (body ?? "").split("\n")) {
      if (!line.startsWith("claude mcp add ")) continue;
      const [options = "", command = ""] = line.split(" -- ");
      const env = Object.fromEntries(
        [...options.matchAll(/-e (\w+)=(\S+)/g)].map(([, name, value]) => [
          name ?? "",
          (value ?? "").replace("$HOME", home),
        ]),
      );
      const [program = "", ...args] = command.trim().split(/\s+/);
      servers.push({ host: host ?? "", command: program, args, env });
    }
  }
  return servers;
}

describe("the MCP README's host configurations", () => {
  it("each starts the installed server, which lists its tools and answers", async () => {
    const servers = await readmeHostServers();
    expect(new Set(servers.map((server) => server.host.split(" ")[0]))).toEqual(
      new Set(["Claude", "Cursor", "VS"]),
    );
    expect(servers.map((server) => server.host).join(", ")).toMatch(
      /Claude Code.*Claude Desktop.*Cursor.*VS Code/,
    );
    let answered = 0;
    for (const server of servers) {
      // `npx -y @rekey/mcp` finds the package installed in the directory it runs in, as it
      // would find it in npm's cache after a first download from the registry.
      const transport = new StdioClientTransport({
        command: server.command,
        args: server.args,
        env: { ...(env as Record<string, string>), ...server.env },
        cwd: installs.mcp,
        stderr: "pipe",
      });
      const client = new Client({ name: server.host, version: "1.0.0" });
      await client.connect(transport);
      try {
        expect((await client.listTools()).tools, server.host).toHaveLength(4);
        const status = await client.callTool({ name: "get_key_status", arguments: {} });
        // A configuration that names a profile this store does not hold gets NOT_FOUND, saying
        // how to make it; the others answer with the profile's status.
        const text = JSON.stringify(status.content);
        if (status.isError) expect(text, server.host).toMatch(/NOT_FOUND.*rekey register/);
        else {
          expect(text, server.host).toContain("fingerprint");
          answered += 1;
        }
      } finally {
        await client.close();
      }
    }
    expect(answered).toBeGreaterThan(0);
  });
});
