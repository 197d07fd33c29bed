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
import { deliverToDotenv, setDotenvVariable } from "./dotenv-target.js";
import { mountTinyDisk } from "./full-disk.test-helper.js";

const KEY = `lf_${"K".repeat(43)}`;

async function refusal(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (error) {
    if (isRekeyError(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("setDotenvVariable", () => {
  it("changes only the value, keeping every other byte: comments, CRLF, export, quotes, inline comments", () => {
    const cases: [string, string][] = [
      ["A=1\nLW=old\nB=2\n", `A=1\nLW=${KEY}\nB=2\n`],
      ["# key\r\nLW=old\r\nB=2\r\n", `# key\r\nLW=${KEY}\r\nB=2\r\n`],
      ["A=1\nLW=old", `A=1\nLW=${KEY}`],
      ["export LW=old\n", `export LW=${KEY}\n`],
      ['  LW = "old"  # the wallet\n', `  LW = "${KEY}"  # the wallet\n`],
      ["LW='old'\n", `LW='${KEY}'\n`],
      ["LW=old # comment\n", `LW=${KEY} # comment\n`],
      ["LW=\n", `LW=${KEY}\n`],
      // Duplicates: every one, whichever a loader keeps.
      ["LW=one\nX=1\nLW=two\n", `LW=${KEY}\nX=1\nLW=${KEY}\n`],
      // Names that only start the same are other variables.
      ["LW_OLD=x\nMY_LW=y\n", `LW_OLD=x\nMY_LW=y\nLW=${KEY}\n`],
      ["# LW=commented out\n", `# LW=commented out\nLW=${KEY}\n`],
      // Appended with the file's own line ends; no final newline stays without one.
      ["A=1\r\nB=2\r\n", `A=1\r\nB=2\r\nLW=${KEY}\r\n`],
      ["A=1", `A=1\nLW=${KEY}`],
      ["", `LW=${KEY}\n`],
    ];
    for (const [before, after] of cases)
      expect(setDotenvVariable(before, "LW", KEY), before).toBe(after);
  });

  it("refuses a bad variable name or a value that would need escaping", () => {
    expect(() => setDotenvVariable("", "1BAD", KEY)).toThrow(/not a variable name/);
    expect(() => setDotenvVariable("", "OK", "a b\n")).toThrow(/cannot hold/);
  });
});

describe("the dotenv target", () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "rekey-dotenv-"));
    file = join(dir, ".env");
  });

  it("rewrites the file atomically and keeps its mode (0640 stays 0640)", async () => {
    await writeFile(file, '# service\r\nexport LIGHTNING_WALLET_API_KEY="old"\r\nPORT=8080', {
      mode: 0o640,
    });
    await chmod(file, 0o640);
    await deliverToDotenv(file, "LIGHTNING_WALLET_API_KEY", KEY);
    expect(await readFile(file, "utf8")).toBe(
      `# service\r\nexport LIGHTNING_WALLET_API_KEY="${KEY}"\r\nPORT=8080`,
    );
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect(await readdir(dir)).toEqual([".env"]);
  });

  it("refuses a missing file, a link, a directory and a world-readable file, changing nothing", async () => {
    expect(await refusal(deliverToDotenv(file, "LW", KEY))).toMatch(
      /^CONFIG_INVALID: .*does not exist/,
    );
    const real = join(dir, "real.env");
    await writeFile(real, "LW=old\n", { mode: 0o600 });
    await symlink(real, file);
    expect(await refusal(deliverToDotenv(file, "LW", KEY))).toMatch(/symbolic link/);
    expect(await readFile(real, "utf8")).toBe("LW=old\n");
    const sub = join(dir, "sub");
    await mkdir(sub);
    expect(await refusal(deliverToDotenv(sub, "LW", KEY))).toMatch(/is a directory/);
    const open = join(dir, "open.env");
    await writeFile(open, "LW=old\n");
    await chmod(open, 0o644);
    expect(await refusal(deliverToDotenv(open, "LW", KEY))).toMatch(
      /mode 644, open to other users/,
    );
    expect(await readFile(open, "utf8")).toBe("LW=old\n");
  });

  it("on a full disk fails with ENOSPC and keeps the old file", async () => {
    const disk = mountTinyDisk();
    if (disk === undefined) {
      // Not root: an unwritable directory is the failure this machine can produce.
      await writeFile(file, "LW=old\n", { mode: 0o600 });
      await chmod(dir, 0o500);
      expect(await refusal(deliverToDotenv(file, "LW", KEY))).toMatch(
        /^STORE_UNAVAILABLE: .*EACCES/,
      );
      await chmod(dir, 0o700);
      expect(await readFile(file, "utf8")).toBe("LW=old\n");
      return;
    }
    try {
      const env = join(disk.dir, ".env");
      await writeFile(env, "LW=old\n", { mode: 0o600 });
      await writeFile(join(disk.dir, "filler"), Buffer.alloc(64 * 1024)).catch(() => undefined);
      expect(await refusal(deliverToDotenv(env, "LW", KEY))).toMatch(
        /^STORE_UNAVAILABLE: Cannot write .*ENOSPC/,
      );
      expect(await readFile(env, "utf8")).toBe("LW=old\n");
      expect((await readdir(disk.dir)).sort()).toEqual([".env", "filler"]);
    } finally {
      disk.unmount();
    }
  });
});
