import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agent, OPERATOR, type Principal } from "@rekey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Harness, makeToken, startHarness } from "../harness.test-helper.js";
import type { Scope } from "../tokens.js";

/**
 * The console over HTTP, in process, on a real file store and the sandbox: sign-in, the
 * security headers, CSRF, scopes and principals lists. What a browser adds (the countdown, live
 * updates, accessibility) is in console.browser.test.ts.
 */

const fullGrant = {
  name: "login-link",
  scopes: new Set<Scope>(["status", "rotate"]),
  allows: (_principal: Principal) => true,
  restricted: false,
};

let harness: Harness;
let agentId: number;
const restricted = makeToken("one-agent", ["status", "rotate"], ["agent:1"]);

beforeEach(async () => {
  // Status bodies kept a minute: a poll after a console rotation shows it only if the console
  // tells the status cache.
  harness = await startHarness({
    console: true,
    extraTokens: [restricted],
    app: { statusMaxAgeMs: 60_000 },
  });
  agentId = (await harness.rekey.createAgent({ name: "alpha" })).agentId;
  await harness.rekey.createAgent({ name: "beta" });
});
afterEach(async () => {
  await harness.close();
});

const cookieOf = (response: Response) =>
  (response.headers.get("set-cookie") ?? "").split(";")[0] ?? "";

async function signIn(token: string): Promise<{ cookie: string; response: Response }> {
  const response = await harness.app.request("/ui/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token }).toString(),
  });
  return { cookie: cookieOf(response), response };
}

const get = (path: string, cookie: string) => harness.app.request(path, { headers: { cookie } });

const post = (path: string, cookie: string, form: Record<string, string>, headers = {}) =>
  harness.app.request(path, {
    method: "POST",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });

const csrfOf = (page: string) => /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? "";

describe("signing in", () => {
  it("exchanges a one-time login token for an HttpOnly, SameSite=Strict session cookie, once", async () => {
    const loginToken = harness.sessions.issueLoginToken(fullGrant);
    const { cookie, response } = await signIn(loginToken);
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/ui");
    const setCookie = response.headers.get("set-cookie") ?? "";
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\/ui/);
    expect(setCookie).not.toContain(loginToken);
    expect((await get("/ui", cookie)).status).toBe(200);

    const again = await signIn(loginToken);
    expect(again.response.status).toBe(401);
    expect(await again.response.text()).toContain("already used");
  });

  it("sends a visitor without a session to the login page, and refuses a token without status", async () => {
    const page = await harness.app.request("/ui");
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/ui/login");
    expect((await signIn(harness.tokens.reader.raw)).response.status).toBe(403);
    expect((await signIn("not a token")).response.status).toBe(401);
  });

  it("serves every page with a strict CSP, no framing and no caching", async () => {
    const { cookie } = await signIn(harness.tokens.rotate.raw);
    for (const path of ["/ui/login", "/ui", "/ui/principals/operator", "/ui/assets/console.js"]) {
      const response = await get(path, cookie);
      expect(response.headers.get("content-security-policy"), path).toContain("script-src 'self'");
      expect(response.headers.get("content-security-policy"), path).toContain(
        "frame-ancestors 'none'",
      );
      expect(response.headers.get("x-frame-options"), path).toBe("DENY");
      expect(response.headers.get("cache-control"), path).toBe("no-store");
    }
    const page = await (await get("/ui", cookie)).text();
    expect(page).not.toMatch(/<script>|<script [^>]*>[^<]/);
    expect(page).not.toMatch(/ on[a-z]+="/);
    expect(page).not.toMatch(/style="/);
  });
});

describe("the principals page", () => {
  it("lists the operator and agents with fingerprints and cooldowns, never a key, under 100 KB", async () => {
    await harness.rekey.rotateKey({ target: agent(agentId) });
    const { cookie } = await signIn(harness.tokens.rotate.raw);
    const response = await get("/ui", cookie);
    const page = await response.text();
    const status = await harness.rekey.status(agent(agentId));
    expect(page).toContain(status.fingerprint ?? "missing");
    expect(page).toContain("alpha");
    expect(page).toContain("data-countdown");
    for (const principal of [OPERATOR, agent(agentId)]) {
      const { key } = await harness.rekey.keyProvider.current(principal);
      expect(page).not.toContain(key);
    }
    expect(page).not.toContain(harness.tokens.rotate.raw);
    expect(Buffer.byteLength(page)).toBeLessThan(100 * 1024);
  });

  it("shows a status-only sign-in no rotate button, and refuses its rotation", async () => {
    const { cookie } = await signIn(harness.tokens.status.raw);
    const page = await (await get("/ui", cookie)).text();
    expect(page).not.toContain("Rotate");
    const before = await harness.rekey.status(agent(agentId));
    const refused = await post(`/ui/principals/agent-${agentId}/rotate`, cookie, {
      csrf: csrfOf(page),
    });
    expect(refused.status).toBe(403);
    expect((await harness.rekey.status(agent(agentId))).fingerprint).toBe(before.fingerprint);
  });

  it("shows a token with a principals list only its principals", async () => {
    const { cookie } = await signIn(restricted.raw);
    const page = await (await get("/ui", cookie)).text();
    expect(page).toContain('data-principal="agent:1"');
    expect(page).not.toContain('data-principal="agent:2"');
    expect(page).not.toContain('data-principal="operator');
    expect((await get("/ui/principals/agent-2", cookie)).status).toBe(404);
  });
});

describe("rotating from the console", () => {
  it("names the plan and the cooldown first, rotates on the confirmed form, and shows the new fingerprint", async () => {
    const { cookie } = await signIn(harness.tokens.rotate.raw);
    const before = await harness.rekey.status(agent(agentId));
    const poll = async () =>
      (await (
        await harness.call("GET", `/v1/status?agent_id=${agentId}`, {
          token: harness.tokens.status,
        })
      ).json()) as { fingerprint?: string };
    expect((await poll()).fingerprint).toBe(before.fingerprint);
    const confirm = await (await get(`/ui/principals/agent-${agentId}/rotate`, cookie)).text();
    expect(confirm).toContain("30-minute withdrawal cooldown");
    expect(confirm).toContain(before.fingerprint ?? "missing");
    const done = await post(`/ui/principals/agent-${agentId}/rotate`, cookie, {
      csrf: csrfOf(confirm),
      expected: before.fingerprint ?? "",
    });
    expect(done.status).toBe(303);
    const after = await harness.rekey.status(agent(agentId));
    expect(after.fingerprint).not.toBe(before.fingerprint);
    // The API's status shows this process's console rotation at once.
    expect((await poll()).fingerprint).toBe(after.fingerprint);
    const page = await (await get(done.headers.get("location") ?? "", cookie)).text();
    expect(page).toContain(`Rotated: the new key <code>${after.fingerprint}</code>`);
    expect(page).toContain('data-chain="verified"');
  });

  it("refuses a POST without the CSRF token, with a wrong one, or from another origin, and rotates nothing", async () => {
    const { cookie } = await signIn(harness.tokens.rotate.raw);
    const page = await (await get("/ui", cookie)).text();
    const before = await harness.rekey.status(agent(agentId));
    const path = `/ui/principals/agent-${agentId}/rotate`;
    expect((await post(path, cookie, {})).status).toBe(403);
    expect((await post(path, cookie, { csrf: "x".repeat(43) })).status).toBe(403);
    expect(
      (await post(path, cookie, { csrf: csrfOf(page) }, { origin: "https://evil.example" })).status,
    ).toBe(403);
    expect((await harness.rekey.status(agent(agentId))).fingerprint).toBe(before.fingerprint);
    const audited = await harness.store.readAudit();
    expect(audited.filter((entry) => entry.action === "rotate")).toEqual([]);
  });

  it("does not rotate a key that changed since the plan was shown", async () => {
    const { cookie } = await signIn(harness.tokens.rotate.raw);
    const confirm = await (await get(`/ui/principals/agent-${agentId}/rotate`, cookie)).text();
    const before = await harness.rekey.status(agent(agentId));
    await harness.rekey.rotateKey({ target: agent(agentId) });
    const refused = await post(`/ui/principals/agent-${agentId}/rotate`, cookie, {
      csrf: csrfOf(confirm),
      expected: before.fingerprint ?? "",
    });
    expect(refused.status).toBe(409);
    const rotations = (await harness.store.readAudit()).filter(
      (entry) => entry.action === "rotate",
    );
    expect(rotations).toHaveLength(1);
  });
});

describe("without --ui", () => {
  it("serves no console at all", async () => {
    const plain = await startHarness();
    try {
      for (const path of ["/ui", "/ui/login", "/ui/assets/console.js"]) {
        expect((await plain.app.request(path)).status, path).toBe(404);
      }
    } finally {
      await plain.close();
    }
  });
});

describe("deliveries in the console", () => {
  it("shows a failing target as failing, refuses a retry without CSRF, and retries it on the form", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rekey-console-target-"));
    try {
      const down = join(dir, "down");
      const received = join(dir, "received");
      const script = `const fs=require("fs");let k="";process.stdin.on("data",c=>k+=c).on("end",()=>{if(fs.existsSync(${JSON.stringify(down)})){console.error("consumer is down");process.exit(1)}fs.writeFileSync(${JSON.stringify(received)},k)})`;
      await harness.rekey.addDeliveryTarget(
        { kind: "exec", command: [process.execPath, "-e", script] },
        agent(agentId),
      );
      // Delivered once when added: the key before the rotation.
      const delivered = await readFile(received, "utf8");
      await writeFile(down, "");
      const rotated = await harness.rekey.rotateKey({ target: agent(agentId), force: true });
      const { cookie } = await signIn(harness.tokens.rotate.raw);
      const page = await (await get(`/ui/principals/agent-${agentId}`, cookie)).text();
      expect(page).toMatch(/data-target="exec-1".*class="bad">failing</s);
      expect(page).toContain("exited with code 1");

      const refused = await post(`/ui/principals/agent-${agentId}/deliveries/retry`, cookie, {});
      expect(refused.status).toBe(403);
      await rm(down);
      expect(await readFile(received, "utf8")).toBe(delivered);

      const retried = await post(`/ui/principals/agent-${agentId}/deliveries/retry`, cookie, {
        csrf: csrfOf(page),
      });
      expect(retried.status).toBe(303);
      const after = await (await get(`/ui/principals/agent-${agentId}`, cookie)).text();
      expect(after).toMatch(/data-target="exec-1".*class="ok">current</s);
      expect(after).not.toContain("Retry the deliveries");
      const { key } = await harness.rekey.keyProvider.current(agent(agentId));
      expect((await readFile(received, "utf8")).trim()).toBe(key);
      expect(rotated.newFingerprint).toBe((await harness.rekey.status(agent(agentId))).fingerprint);
      expect(after).not.toContain(key);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
