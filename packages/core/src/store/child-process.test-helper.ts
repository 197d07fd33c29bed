import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/**
 * Runs the real file store in other Node processes. Node 20 cannot run TypeScript, so the store
 * sources are transpiled (no type-check: tsc does that) into a temp directory whose
 * `node_modules` points at core's, and child scripts import them from there.
 */

const srcDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const coreDir = join(srcDir, "..");

const SOURCES = [
  "errors.ts",
  "clock.ts",
  "fingerprint.ts",
  "lazily.ts",
  "delivery/target-schema.ts",
  "store/types.ts",
  "store/json-value.ts",
  "store/schema.ts",
  "store/record-ids.ts",
  "store/migrations/v1-to-v2.ts",
  "store/migrations/v2-to-v3.ts",
  "store/encryption/index.ts",
  "store/encryption/key-sources.ts",
  "store/encryption/master-key.ts",
  "store/encryption/record-sealer.ts",
  "store/encryption/rekey-master.ts",
  "store/encryption/sealed-backup.ts",
  "store/encryption/sealed-key.ts",
  "store/encryption/sealed-secret.ts",
  "store/audit-chain.ts",
  "store/file-io.ts",
  "store/file-lock.ts",
  "store/file-watch.ts",
  "store/freeze.ts",
  "store/file-store.ts",
  "testing/kill-points.ts",
];

/** Child scripts, each reading its JSON arguments from argv[2]. */
const SCRIPTS: Record<string, string> = {
  // Takes a named lock, says so, then lives until killed.
  "hold-lock.mjs": `
    import { createFileStore } from "./store/file-store.js";
    const { dir, name, leaseMs } = JSON.parse(process.argv[2]);
    const store = createFileStore({ dir });
    await store.lock(name, { leaseMs, waitMs: 0 });
    process.stdout.write("locked\\n");
    setInterval(() => {}, 1000);
  `,
  // Reads the store once (migrating an older schema) and prints its version.
  "read-version.mjs": `
    import { createFileStore } from "./store/file-store.js";
    const { dir } = JSON.parse(process.argv[2]);
    const store = createFileStore({ dir });
    const snapshot = await store.read();
    await store.close();
    process.stdout.write(JSON.stringify({ version: snapshot.version }) + "\\n");
  `,
  // Increments the name of the first principal record n times by read-modify-compare-and-set, retrying conflicts.
  "increment.mjs": `
    import { createFileStore } from "./store/file-store.js";
    const { dir, times } = JSON.parse(process.argv[2]);
    const store = createFileStore({ dir });
    let conflicts = 0;
    for (let done = 0; done < times; ) {
      const snapshot = await store.read();
      const { version } = snapshot;
      const data = structuredClone(snapshot.data); // reads are frozen: change a copy
      const record = Object.values(data.principals)[0];
      record.name = String(Number(record.name) + 1);
      const result = await store.compareAndSet(version, data);
      if (result.ok) done += 1; else conflicts += 1;
    }
    await store.close();
    process.stdout.write(JSON.stringify({ conflicts }) + "\\n");
  `,
  // Reads for durationMs and counts reads that failed (a partial file would fail to parse).
  "read-loop.mjs": `
    import { createFileStore } from "./store/file-store.js";
    const { dir, durationMs } = JSON.parse(process.argv[2]);
    const store = createFileStore({ dir });
    const versions = new Set();
    let reads = 0;
    const failures = [];
    process.stdout.write("ready\\n");
    const end = Date.now() + durationMs;
    while (Date.now() < end) {
      try { versions.add((await store.read()).version); reads += 1; }
      catch (error) { failures.push(String(error.code ?? error)); }
    }
    await store.close();
    process.stdout.write(JSON.stringify({ reads, failures, versions: versions.size }) + "\\n");
  `,
  // One compare-and-set of the given data at the given version.
  "write-once.mjs": `
    import { createFileStore } from "./store/file-store.js";
    const { dir, version, data } = JSON.parse(process.argv[2]);
    const store = createFileStore({ dir });
    const result = await store.compareAndSet(version, data);
    await store.close();
    process.stdout.write(JSON.stringify({ ok: result.ok }) + "\\n");
  `,
};

let built: Promise<string> | undefined;

async function build(): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), "rekey-store-child-"));
  await writeFile(join(out, "package.json"), '{ "type": "module" }\n');
  await symlink(join(coreDir, "node_modules"), join(out, "node_modules"), "dir");
  for (const source of SOURCES) {
    const text = await readFile(join(srcDir, source), "utf8");
    const { outputText } = ts.transpileModule(text, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
      fileName: source,
    });
    const target = join(out, source.replace(/\.ts$/, ".js"));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, outputText);
  }
  for (const [name, script] of Object.entries(SCRIPTS)) {
    await writeFile(join(out, name), script);
  }
  process.once("exit", () => {
    // Best effort: the build is small and lives in the OS temp dir anyway.
    void rm(out, { recursive: true, force: true });
  });
  return out;
}

/** The transpiled store, built once per test process. */
export function storeBuild(): Promise<string> {
  built ??= build();
  return built;
}

export interface StartedChild {
  child: ChildProcess;
  /** Resolves with the first stdout line. */
  firstLine: Promise<string>;
  /** Resolves with all stdout and the exit code once the child ends. */
  exited: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>;
}

/** Starts `script` (a key of the scripts above) with `args`. */
export async function startChild(script: string, args: unknown): Promise<StartedChild> {
  const dir = await storeBuild();
  const child = spawn(process.execPath, [join(dir, script), JSON.stringify(args)], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let resolveLine: (line: string) => void = () => {};
  const firstLine = new Promise<string>((resolve) => {
    resolveLine = resolve;
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
    const newline = stdout.indexOf("\n");
    if (newline >= 0) resolveLine(stdout.slice(0, newline));
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve) => {
    child.on("close", (code, signal) => {
      resolveLine(stdout.split("\n")[0] ?? "");
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, firstLine, exited };
}

/** Runs `script` to completion; throws with its stderr if it fails. */
export async function runChild(script: string, args: unknown): Promise<string> {
  const { exited } = await startChild(script, args);
  const result = await exited;
  if (result.code !== 0) {
    throw new Error(`${script} exited with ${result.code ?? result.signal}: ${result.stderr}`);
  }
  return result.stdout;
}

/**
 * Runs `script` to completion, blocking this process's event loop the whole time (as a stalled
 * process would be): call `storeBuild()` first. Throws with its stderr if it fails.
 */
export function runChildSync(buildDir: string, script: string, args: unknown): string {
  return execFileSync(process.execPath, [join(buildDir, script), JSON.stringify(args)], {
    cwd: buildDir,
    encoding: "utf8",
  });
}
