import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "./processes.js";

// The README's "Using it" section, run as a new user types it after the set-up command: its
// first block (build, PATH) in the clone, its second in an empty directory with an empty HOME.
// Two changes only, both for a shared test machine: a free port instead of 8080, and a wait
// for the background sandbox to listen (a person typing the next line is slower than a script).

const repo = fileURLToPath(new URL("../../", import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

/** The shell blocks of the README section headed `heading`, in order. */
async function shellBlocks(heading: string): Promise<string[]> {
  const readme = await readFile(join(repo, "README.md"), "utf8");
  const start = readme.indexOf(`\n## ${heading}\n`);
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
}

describe("the README's Using it section", () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "rekey-readme-test-"));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("runs as written: every command exits 0", async () => {
    const [setUp, commands] = await shellBlocks("Using it");
    expect(setUp).toContain("export PATH=");
    expect(commands).toMatch(/^rekey sandbox --port 8080 &/m);
    const port = await freePort();
    const typed = (commands ?? "")
      .replaceAll("8080", String(port))
      .replace(
        /^(rekey sandbox .*&.*)$/m,
        `$1\nfor i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/${port}) 2>/dev/null && break; sleep 0.1; done`,
      );
    const script = [
      "set -euo pipefail",
      "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
      `cd ${JSON.stringify(repo)}`,
      setUp,
      `cd ${JSON.stringify(work)}`,
      typed,
    ].join("\n");
    const {
      REKEY_HOME: _home,
      REKEY_API_URL: _url,
      REKEY_STORE: _store,
      ...inherited
    } = process.env;
    const result = await run("bash", ["-c", script], {
      cwd: work,
      env: { ...inherited, HOME: work, NO_COLOR: "1" },
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stderr).not.toMatch(/command not found/i);
    expect(result.stdout).toMatch(/fp:[0-9a-f]+/);
  }, 120_000);
});
