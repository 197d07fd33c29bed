import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type Faucet, startFaucet } from "../harness.test-helper.js";

/** `rekey ui` (the built CLI) running the built rekey-http on loopback over the CLI's store. */

const cliBin = fileURLToPath(new URL("../../../cli/dist/rekey.cjs", import.meta.url));
const httpBin = fileURLToPath(new URL("../../dist/bin.js", import.meta.url));

let faucet: Faucet | undefined;
afterEach(async () => {
  await faucet?.close();
  faucet = undefined;
});

describe("rekey ui", () => {
  it("serves the console on loopback and prints a login link that signs in once", async () => {
    faucet = await startFaucet({ testClock: false });
    const child = spawn(process.execPath, [cliBin, "ui", "--no-open", "--json"], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: faucet.dir,
        REKEY_STORE: faucet.dir,
        REKEY_HTTP_BIN: httpBin,
        NO_COLOR: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      // The result is one JSON document, pretty-printed over several lines.
      const printed = await new Promise<{ url: string; login_url: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no output from rekey ui")), 15_000);
        let text = "";
        createInterface({ input: child.stdout }).on("line", (line) => {
          text += `${line}\n`;
          try {
            const parsed = JSON.parse(text) as { url: string; login_url: string };
            clearTimeout(timer);
            resolve(parsed);
          } catch {
            // Not complete yet.
          }
        });
      });
      expect(printed.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ui$/);
      expect(printed.login_url.startsWith(`${printed.url}/login#token=`)).toBe(true);
      const token = printed.login_url.slice(printed.login_url.indexOf("#token=") + 7);

      const signIn = () =>
        fetch(`${printed.url}/login`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ token }).toString(),
          redirect: "manual",
        });
      const first = await signIn();
      expect(first.status).toBe(303);
      const cookie = (first.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      // Loopback over plain HTTP: the cookie cannot be Secure, and is HttpOnly, SameSite=Strict.
      expect(first.headers.get("set-cookie")).not.toMatch(/Secure/);
      const page = await fetch(printed.url, { headers: { cookie } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("http test operator");
      expect((await signIn()).status).toBe(401);
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);
  });
});
