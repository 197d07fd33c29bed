import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  agent,
  type CredentialStore,
  createRekey,
  openCredentialStore,
  type Principal,
  type Rekey,
  systemClock,
} from "@rekey/core";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpApp } from "../app.js";
import { createEventHub, type EventHub } from "../events/event-hub.js";
import { type Faucet, makeToken, startFaucet } from "../harness.test-helper.js";
import { createLogger } from "../logger.js";
import { listen, type RunningServer } from "../server.js";
import type { Scope } from "../tokens.js";
import { createSessionStore, type SessionStore } from "./sessions.js";

/**
 * The console in a real browser: Debian's chromium driven by playwright-core, against rekey-http's
 * app on a loopback server, a file store and the sandbox, with the CLI rotating from another
 * process. `.ci/run` installs chromium when missing; REKEY_CHROMIUM points elsewhere.
 * REKEY_SCREENSHOTS=DIR also writes the screenshots the docs show.
 */

const executablePath = process.env.REKEY_CHROMIUM ?? "/usr/bin/chromium";
// Like PostgreSQL: without chromium these tests are reported as skipped on a developer's
// machine (the README's test command needs only Node.js and npm), and fail in CI, which sets
// REKEY_TEST_BROWSER_REQUIRED=1 and installs it.
const haveChromium = existsSync(executablePath);
if (!haveChromium && process.env.REKEY_TEST_BROWSER_REQUIRED === "1") {
  throw new Error(
    `REKEY_TEST_BROWSER_REQUIRED=1 but there is no chromium at ${executablePath}: apt-get install chromium, or set REKEY_CHROMIUM.`,
  );
}
const screenshots = process.env.REKEY_SCREENSHOTS;
const cliBin = fileURLToPath(new URL("../../../cli/dist/rekey.cjs", import.meta.url));
const axeSource = await readFile(
  createRequire(import.meta.url).resolve("axe-core/axe.min.js"),
  "utf8",
);

const monitor = makeToken("monitor", ["status"]);
const deploy = makeToken("deploy", ["status", "rotate"]);

let faucet: Faucet;
let store: CredentialStore;
let rekey: Rekey;
let events: EventHub;
let sessions: SessionStore;
let server: RunningServer;
let browser: Browser;
let agents: number[];

beforeAll(async () => {
  if (!haveChromium) return;
  faucet = await startFaucet({ testClock: false });
  store = await openCredentialStore({ spec: faucet.dir, env: {} });
  rekey = createRekey({ store, surface: "http", env: {} });
  agents = [];
  for (const name of ["research-bot", "payments-bot", "support-bot"]) {
    agents.push((await rekey.createAgent({ name })).agentId);
  }
  // One agent in cooldown from the start, for the countdown.
  await rekey.rotateKey({ target: agent(agents[2] ?? 0) });
  // The hub's own 5 s poll is off: what the page shows live came from the store's change notice.
  events = createEventHub({ store, clock: systemClock, pollMs: 600_000 });
  sessions = createSessionStore(systemClock);
  const app = createHttpApp({
    rekey,
    events,
    console: { store, sessions, secureCookie: false },
    tokens: [monitor.config, deploy.config],
    rateLimit: { capacity: 100, windowMs: 60_000 },
    logger: createLogger({ level: "silent" }),
    clock: systemClock,
  });
  server = await listen({
    fetch: app.fetch,
    host: "127.0.0.1",
    port: 0,
    logger: createLogger({ level: "silent" }),
  });
  browser = await chromium.launch({
    executablePath,
    // Root in CI and containers: chromium's sandbox needs user namespaces it may not have.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  events?.close();
  await server?.shutdown();
  await rekey?.close();
  await store?.close();
  await faucet?.close();
});

function loginLink(): string {
  const token = sessions.issueLoginToken({
    name: "login-link",
    scopes: new Set<Scope>(["status", "rotate"]),
    allows: (_principal: Principal) => true,
    restricted: false,
  });
  return `${server.url}/ui/login#token=${token}`;
}

/** A fresh browser context signed in through a one-time login link. */
async function signedIn(): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(loginLink());
  await page.waitForURL(`${server.url}/ui`, { timeout: 5000 });
  return page;
}

async function shoot(page: Page, name: string): Promise<void> {
  if (screenshots === undefined) return;
  await mkdir(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, name), fullPage: true });
}

function runCli(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliBin, ...args], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: faucet.dir,
        REKEY_STORE: faucet.dir,
        NO_COLOR: "1",
      },
      stdio: "ignore",
    });
    child.once("exit", resolve);
  });
}

const row = (page: Page, agentId: number) => page.locator(`tr[data-principal="agent:${agentId}"]`);

describe.skipIf(!haveChromium)("the console in chromium", () => {
  it("signs in with the one-time link, lists the principals, ticks a countdown, keeps no secret in the browser", async () => {
    const page = await signedIn();
    expect(page.url()).toBe(`${server.url}/ui`);
    await expect.poll(() => page.locator("tbody tr").count()).toBe(4);
    for (const agentId of agents) {
      const fingerprint = (await rekey.status(agent(agentId))).fingerprint ?? "missing";
      expect(await row(page, agentId).locator("[data-fingerprint]").textContent()).toBe(
        fingerprint,
      );
    }
    const countdown = row(page, agents[2] ?? 0).locator("time[data-countdown]");
    const first = await countdown.textContent();
    expect(first).toMatch(/^\d+m \d\ds left$/);
    await expect.poll(() => countdown.textContent(), { timeout: 3000 }).not.toBe(first);
    // The session cookie is HttpOnly; nothing is kept in storage; no page holds a key.
    expect(await page.evaluate("document.cookie")).toBe("");
    expect(await page.evaluate("localStorage.length + sessionStorage.length")).toBe(0);
    const html = await page.content();
    for (const agentId of agents) {
      expect(html).not.toContain((await rekey.keyProvider.current(agent(agentId))).key);
    }
    await shoot(page, "console-principals.png");
    await page.context().close();
  });

  it("rotates an agent from the page after naming the cooldown, and shows the new fingerprint", async () => {
    const page = await signedIn();
    const agentId = agents[0] ?? 0;
    const before = (await rekey.status(agent(agentId))).fingerprint;
    await row(page, agentId)
      .getByRole("link", { name: /Rotate/ })
      .click();
    await expect
      .poll(() => page.locator(".confirm").textContent())
      .toContain("30-minute withdrawal cooldown");
    await shoot(page, "console-rotate.png");
    await page.getByRole("button", { name: /Rotate now/ }).click();
    await page.waitForURL(/\/ui\/principals\/agent-\d+\?rotated=1$/);
    const after = (await rekey.status(agent(agentId))).fingerprint ?? "missing";
    expect(after).not.toBe(before);
    expect(await page.locator(".notice").textContent()).toContain(after);
    expect(await page.locator("[data-chain]").getAttribute("data-chain")).toBe("verified");
    await shoot(page, "console-principal.png");
    await page.context().close();
  });

  it("shows a rotation made by the CLI in another process, pushed live without a reload", async () => {
    const page = await signedIn();
    const agentId = agents[1] ?? 0;
    const fingerprint = row(page, agentId).locator("[data-fingerprint]");
    const before = await fingerprint.textContent();
    // The page's event stream is open before the CLI runs.
    await expect
      .poll(() => page.locator("#live-status").textContent(), { timeout: 10_000 })
      .toBe("Live.");
    expect(await runCli(["rotate", "--agent", String(agentId), "--yes"])).toBe(0);
    const after = (await rekey.status(agent(agentId))).fingerprint ?? "missing";
    expect(after).not.toBe(before);
    // Waits for a loaded machine; console.bench.mjs measures how fast the event arrives.
    await fingerprint.filter({ hasText: after }).waitFor({ timeout: 10_000 });
    await page.context().close();
  });

  it("refuses a POST without the CSRF token, and a status-only sign-in has no rotate button", async () => {
    const page = await signedIn();
    const agentId = agents[0] ?? 0;
    const before = (await rekey.status(agent(agentId))).fingerprint;
    const status = await page.evaluate(
      async (path) => (await fetch(path, { method: "POST", body: new URLSearchParams() })).status,
      `/ui/principals/agent-${agentId}/rotate`,
    );
    expect(status).toBe(403);
    expect((await rekey.status(agent(agentId))).fingerprint).toBe(before);
    await page.context().close();

    const viewer = await (await browser.newContext()).newPage();
    await viewer.goto(`${server.url}/ui/login`);
    await viewer.getByLabel(/bearer token/).fill(monitor.raw);
    await viewer.getByRole("button", { name: "Sign in" }).click();
    await viewer.waitForURL(`${server.url}/ui`);
    await expect.poll(() => viewer.locator("tbody tr").count()).toBe(4);
    expect(await viewer.getByRole("link", { name: /Rotate/ }).count()).toBe(0);
    expect(await viewer.getByRole("button", { name: /Rotate/ }).count()).toBe(0);
    await viewer.context().close();
  });

  it("has no serious accessibility violations (axe-core) and weighs under 100 KB", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    let bytes = 0;
    page.on("response", (response) => {
      void response.body().then(
        (body) => {
          bytes += body.length;
        },
        () => undefined,
      );
    });
    await page.goto(loginLink());
    await page.waitForURL(`${server.url}/ui`);
    await page.waitForLoadState("networkidle");
    bytes = 0;
    await page.reload();
    await page.waitForLoadState("networkidle");
    expect(bytes).toBeGreaterThan(1000);
    expect(bytes).toBeLessThan(100 * 1024);
    for (const path of [
      "/ui",
      `/ui/principals/agent-${agents[0]}`,
      `/ui/principals/agent-${agents[0]}/rotate`,
    ]) {
      await page.goto(`${server.url}${path}`);
      // Evaluated through the debugging protocol, which the page's CSP does not govern.
      await page.evaluate(axeSource);
      const violations = (await page.evaluate(
        "axe.run().then((result) => result.violations.map(({ id, impact }) => ({ id, impact })))",
      )) as Array<{ id: string; impact: string }>;
      expect(
        violations.filter((violation) => ["serious", "critical"].includes(violation.impact)),
        path,
      ).toEqual([]);
    }
    await context.close();
  });
});
