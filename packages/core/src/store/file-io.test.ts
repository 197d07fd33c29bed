import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isRekeyError, RekeyError } from "../errors.js";
import { writeFileAtomic } from "./file-io.js";

describe("writeFileAtomic's beforeRename", () => {
  let dir: string;
  let target: string;
  const temps = async () => (await readdir(dir)).filter((name) => name.endsWith(".tmp"));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "rekey-file-io-"));
    target = join(dir, "credentials.json");
    await writeFile(target, "old", { mode: 0o600 });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("runs once the temp file holds the content, and the rename waits for it", async () => {
    const seen: { temp: string; target: string }[] = [];
    let finish = () => {};
    const written = writeFileAtomic(target, "new", () => true, {
      beforeRename: async () => {
        const [temp] = await temps();
        seen.push({
          temp: await readFile(join(dir, temp ?? "none"), "utf8"),
          target: await readFile(target, "utf8"),
        });
        await new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
    });
    while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(seen).toEqual([{ temp: "new", target: "old" }]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await readFile(target, "utf8")).toBe("old");
    finish();
    expect(await written).toBe(true);
    expect(await readFile(target, "utf8")).toBe("new");
    expect(await temps()).toEqual([]);
  });

  it("makes no rename when it fails: the target stays, the temp file goes, its error passes", async () => {
    const refusal = new RekeyError("STORE_UNAVAILABLE", "the log refused");
    await expect(
      writeFileAtomic(target, "new", () => true, {
        beforeRename: () => Promise.reject(refusal),
      }),
    ).rejects.toBe(refusal);
    await expect(
      writeFileAtomic(target, "new", () => true, {
        beforeRename: () => Promise.reject(new Error("EIO")),
      }),
    ).rejects.toSatisfy((error: unknown) => isRekeyError(error, "STORE_UNAVAILABLE"));
    expect(await readFile(target, "utf8")).toBe("old");
    expect(await temps()).toEqual([]);
  });

  it("still waits for the temp file's fsync when it throws synchronously", async () => {
    // Thrown, not rejected: the fsync already started must settle before the descriptor is
    // closed (an fsync left running on a closed, perhaps reused, descriptor: EBADF as an
    // unhandled rejection, or another file synced).
    const refusal = new RekeyError("STORE_UNAVAILABLE", "refused at once");
    for (let round = 0; round < 5; round++) {
      await expect(
        writeFileAtomic(target, "new", () => true, {
          beforeRename: () => {
            throw refusal;
          },
        }),
      ).rejects.toBe(refusal);
    }
    expect(await readFile(target, "utf8")).toBe("old");
    expect(await temps()).toEqual([]);
  });

  it("reports a rename that fails after it as STORE_UNAVAILABLE, leaving no temp file", async () => {
    // A non-empty directory in the target's place: rename(2) refuses to replace it.
    await rm(target);
    await mkdir(target);
    await writeFile(join(target, "inside"), "x");
    let ran = false;
    await expect(
      writeFileAtomic(target, "new", () => true, {
        beforeRename: async () => {
          ran = true;
        },
      }),
    ).rejects.toSatisfy((error: unknown) => isRekeyError(error, "STORE_UNAVAILABLE"));
    expect(ran).toBe(true);
    expect(await temps()).toEqual([]);
  });
});
