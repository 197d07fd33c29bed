import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseCliArgs, USAGE } from "./cli-args.js";
import { ok, refused, registerOperator, text } from "./conformance.test-helper.js";

const packageDirectory = join(dirname(fileURLToPath(import.meta.url)), "..");
const binPath = join(packageDirectory, "dist", "bin.js");
const children = new Set<ChildProcess>();
let directory: string;

beforeAll(() => {
  // The test runs the built bin, as users do; build it from the current sources first.
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: packageDirectory });
  directory = mkdtempSync(join(tmpdir(), "rekey-sandbox-bin-"));
});
afterEach(() => {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

interface StartedBin {
  child: ChildProcess;
  url: string;
  stdoutLines: string[];
  stderr: () => string;
}

async function startBin(args: string[]): Promise<StartedBin> {
  const child = spawn(process.execPath, [binPath, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const stdoutLines: string[] = [];
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const firstLine = new Promise<string>((resolve, reject) => {
    lines.on("line", (line) => {
      stdoutLines.push(line);
      if (stdoutLines.length === 1) resolve(line);
    });
    child.once("exit", (code) => reject(new Error(`bin exited with ${code}: ${stderr}`)));
  });
  const line = await firstLine;
  const match = /^rekey-sandbox listening on (http:\/\/127\.0\.0\.1:\d+\/ai-agents\/api)$/.exec(
    line,
  );
  expect(match, line).not.toBeNull();
  return { child, url: match?.[1] ?? "", stdoutLines, stderr: () => stderr };
}

describe("rekey-sandbox bin", () => {
  it("prints exactly one line with its URL and exits 0 on SIGTERM", async () => {
    const bin = await startBin(["--quiet"]);
    await ok(bin.url, { action: "register" });
    bin.child.kill("SIGTERM");
    const [code] = await once(bin.child, "exit");
    expect(code).toBe(0);
    expect(bin.stdoutLines).toHaveLength(1);
  });

  it("warns on stderr that a restart forgets every key when started without --data", async () => {
    const memory = await startBin(["--quiet"]);
    await ok(memory.url, { action: "register" });
    expect(memory.stderr()).toContain("no --data FILE");
    expect(memory.stderr()).toContain("a restart forgets every key");
    const kept = await startBin(["--quiet", "--data", join(directory, "warn.json")]);
    await ok(kept.url, { action: "register" });
    expect(kept.stderr()).toBe("");
  });

  it("answers --version, -v and --help like every rekey binary", () => {
    const { version } = createRequire(import.meta.url)("../package.json") as { version: string };
    for (const flag of ["--version", "-v"]) {
      expect(execFileSync(process.execPath, [binPath, flag], { encoding: "utf8" })).toBe(
        `${version}\n`,
      );
    }
    const help = execFileSync(process.execPath, [binPath, "--help"], { encoding: "utf8" });
    expect(help).toContain("Usage: rekey-sandbox");
  });

  it("keeps its state across kill -9 with --data", async () => {
    const dataFile = join(directory, "kill9.json");
    const first = await startBin(["--data", dataFile, "--quiet"]);
    const operator = await registerOperator(first.url);
    await ok(first.url, { action: "sandbox_credit", api_key: operator.apiKey, amount_sats: 42 });
    const rotated = await ok(first.url, {
      action: "regenerate_operator_key",
      api_key: operator.apiKey,
    });
    first.child.kill("SIGKILL");
    await once(first.child, "exit");

    const second = await startBin(["--data", dataFile, "--quiet"]);
    await refused(second.url, { action: "whoami", api_key: operator.apiKey }, "invalid_api_key");
    expect(
      await ok(second.url, { action: "get_balance", api_key: text(rotated, "api_key") }),
    ).toMatchObject({ balance_sats: 42 });
  });

  it("applies --test-clock, --no-request-id and --fault", async () => {
    const bin = await startBin([
      "--test-clock",
      "--no-request-id",
      "--fault",
      "whoami:1:status_503",
      "--fault",
      "get_balance:1:delay:10",
    ]);
    await ok(bin.url, { action: "sandbox_advance_clock", seconds: 60 });
    const operator = await registerOperator(bin.url);
    const whoami = await fetch(bin.url, {
      method: "POST",
      body: JSON.stringify({ action: "whoami", api_key: operator.apiKey }),
    });
    expect(whoami.status).toBe(503);
    await ok(bin.url, { action: "get_balance", api_key: operator.apiKey });
    const rotated = await ok(bin.url, {
      action: "regenerate_operator_key",
      api_key: operator.apiKey,
      request_id: "ignored",
    });
    expect(rotated).not.toHaveProperty("request_id");
    // Request lines go to stderr, never a key.
    expect(bin.stderr()).toMatch(/regenerate_operator_key -> 200 ok/);
    expect(bin.stderr()).not.toContain(operator.apiKey);
    expect(bin.stderr()).not.toContain(text(rotated, "api_key"));
  });

  it("refuses sandbox_advance_clock without --test-clock", async () => {
    const bin = await startBin(["--quiet"]);
    await refused(bin.url, { action: "sandbox_advance_clock", seconds: 1 }, "forbidden");
  });

  it("exits 2 with usage on a bad flag", async () => {
    const child = spawn(process.execPath, [binPath, "--fault", "whoami:nope"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(stderr).toContain("invalid fault");
    expect(stderr).toContain("Usage: rekey-sandbox");
  });
});

describe("parseCliArgs", () => {
  it("defaults to port 0 on 127.0.0.1 with request_id support and no faults", () => {
    expect(parseCliArgs([])).toEqual({
      port: 0,
      host: "127.0.0.1",
      testClock: false,
      requestIdSupport: true,
      faults: [],
    });
  });

  it("reads every flag", () => {
    expect(
      parseCliArgs([
        "--port",
        "8123",
        "--host",
        "0.0.0.0",
        "--data",
        "/tmp/x.json",
        "--test-clock",
        "--no-request-id",
        "--fault",
        "whoami:2:delay:3000",
        "--fault",
        "recover:1:omit_key",
      ]),
    ).toEqual({
      port: 8123,
      host: "0.0.0.0",
      dataFile: "/tmp/x.json",
      testClock: true,
      requestIdSupport: false,
      faults: [
        { action: "whoami", nth: 2, kind: "delay", delayMs: 3000 },
        { action: "recover", nth: 1, kind: "omit_key" },
      ],
    });
  });

  it("rejects unknown flags and bad ports", () => {
    expect(() => parseCliArgs(["--verbose"])).toThrow();
    expect(() => parseCliArgs(["--port", "70000"])).toThrow(/--port/);
    expect(() => parseCliArgs(["--port", "abc"])).toThrow(/--port/);
    expect(USAGE).toContain("--fault");
  });
});
