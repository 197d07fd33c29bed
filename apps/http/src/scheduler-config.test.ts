import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isRekeyError } from "@rekey/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseHttpConfig } from "./config.js";

const env = {
  REKEY_HTTP_TOKENS: JSON.stringify([{ name: "ci", sha256: "a".repeat(64), scopes: ["status"] }]),
};
let dir: string;
let secretFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rekey-http-config-"));
  secretFile = join(dir, "notify-secret");
  await writeFile(secretFile, "0123456789abcdef0123456789abcdef\n", { mode: 0o600 });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function refusal(argv: string[]): Promise<string> {
  const error = await parseHttpConfig(argv, env).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isRekeyError(error, "CONFIG_INVALID"), String(error)).toBe(true);
  return (error as Error).message;
}

describe("parseHttpConfig --scheduler", () => {
  it("is off by default, and ticks every 60 s when asked", async () => {
    expect((await parseHttpConfig([], env)).scheduler).toBeUndefined();
    expect((await parseHttpConfig(["--scheduler"], env)).scheduler).toEqual({
      intervalMs: 60_000,
      notify: undefined,
    });
  });

  it("reads the notification webhook and its secret", async () => {
    const config = await parseHttpConfig(
      [
        "--scheduler",
        "--scheduler-interval",
        "5",
        "--notify-url",
        "https://hooks.example.com/rekey",
        "--notify-secret-file",
        secretFile,
      ],
      env,
    );
    expect(config.scheduler).toEqual({
      intervalMs: 5000,
      notify: {
        url: "https://hooks.example.com/rekey",
        secret: "0123456789abcdef0123456789abcdef",
      },
    });
  });

  it("refuses what it cannot honour", async () => {
    expect(await refusal(["--notify-url", "https://hooks.example.com"])).toContain(
      "need --scheduler",
    );
    expect(await refusal(["--scheduler", "--scheduler-interval", "0"])).toContain(
      "--scheduler-interval must be a whole number from 1 to 3600",
    );
    expect(
      await refusal([
        "--scheduler",
        "--notify-url",
        "http://hooks.example.com/rekey",
        "--notify-secret-file",
        secretFile,
      ]),
    ).toContain("must be https");
    // A name that only starts like a loopback address is a remote host.
    expect(
      await refusal([
        "--scheduler",
        "--notify-url",
        "http://127.example.com/rekey",
        "--notify-secret-file",
        secretFile,
      ]),
    ).toContain("must be https");
    expect(await refusal(["--scheduler", "--notify-url", "https://hooks.example.com"])).toContain(
      "go together",
    );
    const short = join(dir, "short-secret");
    await writeFile(short, "guessable\n", { mode: 0o600 });
    expect(
      await refusal([
        "--scheduler",
        "--notify-url",
        "https://hooks.example.com/rekey",
        "--notify-secret-file",
        short,
      ]),
    ).toContain("at least 16 bytes");
  });
});
