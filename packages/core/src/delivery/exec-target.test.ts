import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { deliverToExec } from "./exec-target.js";

const KEY = `lf_${"E".repeat(43)}`;
const payload = {
  key: KEY,
  fingerprint: fingerprint(KEY),
  principal: "agent:7",
  faucet: "http://127.0.0.1:1/api",
};
const node = process.execPath;

async function refusal(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (error) {
    if (isRekeyError(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("the exec target", () => {
  it("gives the key on stdin only: not on argv, not in the environment (the old key variables are dropped)", async () => {
    const out = join(await mkdtemp(join(tmpdir(), "rekey-exec-")), "seen.json");
    const script = `let input="";process.stdin.on("data",c=>input+=c).on("end",()=>require("fs").writeFileSync(${JSON.stringify(out)},JSON.stringify({input,argv:process.argv,env:process.env})))`;
    await deliverToExec([node, "-e", script], payload, {
      PATH: process.env.PATH,
      LIGHTNING_WALLET_API_KEY: "lf_the_old_dead_key",
      KEEP: "1",
    });
    const seen = JSON.parse(await readFile(out, "utf8"));
    expect(seen.input).toBe(`${KEY}\n`);
    expect(JSON.stringify(seen.argv)).not.toContain(KEY);
    expect(JSON.stringify(seen.env)).not.toContain(KEY);
    expect(seen.env.LIGHTNING_WALLET_API_KEY).toBeUndefined();
    expect(seen.env).toMatchObject({
      KEEP: "1",
      REKEY_PRINCIPAL: "agent:7",
      REKEY_FINGERPRINT: payload.fingerprint,
    });
  });

  it("exit 1 is a failure that keeps none of the output, which could carry the key encoded", async () => {
    const script = `process.stdin.on("data",c=>{process.stderr.write("rejected "+Buffer.from(c.toString().trim()).toString("base64"));process.exit(1)})`;
    const message = await refusal(deliverToExec([node, "-e", script], payload, {}));
    expect(message).toMatch(/^UPSTREAM_UNAVAILABLE: .* exited with code 1$/);
    expect(message).not.toContain(Buffer.from(KEY).toString("base64"));
    expect(message).not.toContain("rejected");
  });

  it("ends when the command exits, though a daemon it started keeps running", async () => {
    const script = `require("child_process").spawn(process.execPath,["-e","setTimeout(()=>{},4000)"],{detached:true,stdio:"inherit"}).unref();process.stdin.resume();process.stdin.on("end",()=>process.exit(0))`;
    const started = Date.now();
    await deliverToExec([node, "-e", script], payload, {}, 20_000);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("a command that hangs (and a child it started) is killed at the timeout", async () => {
    const started = Date.now();
    const script = `require("child_process").spawn(process.execPath,["-e","setInterval(()=>{},1000)"],{stdio:"ignore"});setInterval(()=>{},1000)`;
    expect(await refusal(deliverToExec([node, "-e", script], payload, {}, 300))).toMatch(
      /^UPSTREAM_TIMEOUT: .*within 300 ms/,
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("a command that does not exist is CONFIG_INVALID", async () => {
    expect(await refusal(deliverToExec(["/nonexistent/deliver-key"], payload, {}))).toMatch(
      /^CONFIG_INVALID: Cannot run .*ENOENT/,
    );
  });

  it("a command that exits without reading its stdin still counts by its exit code", async () => {
    await deliverToExec([node, "-e", "process.exit(0)"], payload, {});
  });
});
