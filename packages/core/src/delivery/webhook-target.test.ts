import { chmod, mkdtemp, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isRekeyError } from "../errors.js";
import { fingerprint } from "../fingerprint.js";
import { verifyWebhookSignature } from "./webhook-signature.js";
import { deliverToWebhook } from "./webhook-target.js";

const KEY = `lf_${"W".repeat(43)}`;
const SECRET = "0123456789abcdef0123456789abcdef";
const nowMs = Date.parse("2026-12-02T12:00:00.000Z");
const clock = { now: () => nowMs };
const payload = {
  key: KEY,
  fingerprint: fingerprint(KEY),
  principal: "agent:7",
  faucet: "http://127.0.0.1:1/api",
  cooldownUntil: "2026-12-02T12:30:00.000Z",
  rotation: {
    requestId: "r-1",
    oldFingerprint: "fp:old",
    newFingerprint: fingerprint(KEY),
    rotatedAt: "2026-12-02T12:00:00.000Z",
    cooldownUntil: "2026-12-02T12:30:00.000Z",
    verified: true,
    surface: "cli" as const,
  },
};

async function refusal(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (error) {
    if (isRekeyError(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
  throw new Error("expected a refusal");
}

let answer: (request: IncomingMessage, response: ServerResponse, body: string) => void;
let received: { headers: IncomingMessage["headers"]; body: string }[];
let server: ReturnType<typeof createServer>;
let url: string;
let secretFile: string;

beforeEach(async () => {
  received = [];
  answer = (_request, response) => response.writeHead(204).end();
  server = createServer((request, response) => {
    let body = "";
    request
      .on("data", (chunk) => (body += chunk))
      .on("end", () => {
        received.push({ headers: request.headers, body });
        answer(request, response, body);
      });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/rekey`;
  const dir = await mkdtemp(join(tmpdir(), "rekey-webhook-"));
  secretFile = join(dir, "secret");
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("the webhook target", () => {
  it("posts a signed key.rotated event with fingerprints, principal and cooldown, never the key", async () => {
    await deliverToWebhook({ url, secretFile }, payload, { clock });
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request?.body).not.toContain(KEY);
    expect(JSON.parse(request?.body ?? "")).toMatchObject({
      type: "key.rotated",
      principal: "agent:7",
      newFingerprint: payload.fingerprint,
      oldFingerprint: "fp:old",
      cooldownUntil: "2026-12-02T12:30:00.000Z",
      requestId: "r-1",
    });
    const header = request?.headers["rekey-signature"];
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        body: request?.body ?? "",
        header: String(header),
        now: nowMs / 1000 + 10,
      }),
    ).toBe(nowMs / 1000);
  });

  it("does not read a reply body: a receiver that streams without end cannot fill memory", async () => {
    let written = 0;
    answer = (_request, response) => {
      response.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(1024 * 1024);
      const more = () => {
        // Up to 2 GiB, far more than a test process could hold, unless the reader stops.
        while (written < 2048 && response.write(chunk)) written += 1;
        if (written < 2048) response.once("drain", more);
        else response.end();
      };
      response.on("close", () => response.removeAllListeners("drain"));
      more();
    };
    await deliverToWebhook({ url, secretFile }, payload, { clock });
    expect(written).toBeLessThan(256);
  });

  it("a 500, a redirect (not followed), a timeout and a receiver that is down are failures", async () => {
    answer = (_request, response) => response.writeHead(500).end("boom");
    expect(await refusal(deliverToWebhook({ url, secretFile }, payload, { clock }))).toMatch(
      /^UPSTREAM_UNAVAILABLE: .*answered 500/,
    );
    answer = (_request, response) =>
      response.writeHead(302, { location: "http://127.0.0.1:9/elsewhere" }).end();
    expect(await refusal(deliverToWebhook({ url, secretFile }, payload, { clock }))).toMatch(
      /redirect \(302\)/,
    );
    expect(received).toHaveLength(2);
    answer = () => {
      // Never answers.
    };
    expect(
      await refusal(deliverToWebhook({ url, secretFile, timeoutMs: 200 }, payload, { clock })),
    ).toMatch(/^UPSTREAM_TIMEOUT/);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    expect(await refusal(deliverToWebhook({ url, secretFile }, payload, { clock }))).toMatch(
      /^UPSTREAM_UNAVAILABLE: .*cannot be reached/,
    );
    server = createServer();
    server.listen(0, "127.0.0.1");
  });

  it("refuses plain http to a remote host, a secret file open to others, a short secret", async () => {
    expect(
      await refusal(
        deliverToWebhook({ url: "http://example.com/hook", secretFile }, payload, { clock }),
      ),
    ).toMatch(/^CONFIG_INVALID/);
    await chmod(secretFile, 0o644);
    expect(await refusal(deliverToWebhook({ url, secretFile }, payload, { clock }))).toMatch(
      /^CONFIG_INVALID: .*mode 644/,
    );
    await writeFile(secretFile, "short", { mode: 0o600 });
    await chmod(secretFile, 0o600);
    expect(await refusal(deliverToWebhook({ url, secretFile }, payload, { clock }))).toMatch(
      /^CONFIG_INVALID: .*at least 16 bytes/,
    );
    expect(received).toHaveLength(0);
  });
});
