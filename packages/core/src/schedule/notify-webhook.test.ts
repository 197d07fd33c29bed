import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { ScheduleEvent } from "./events.js";
import { createWebhookNotifier, type WebhookSigner } from "./notify-webhook.js";

const SECRET = "0123456789abcdef0123456789abcdef";
// The delivery webhooks' scheme, as a receiver would check it.
const signer: WebhookSigner = {
  header: "Rekey-Signature",
  sign: (body, t) =>
    `t=${t},v1=${createHmac("sha256", SECRET).update(`${t}.${body}`).digest("hex")}`,
};
const event: ScheduleEvent = {
  type: "rotation.failed",
  at: "2026-01-01T00:00:00.000Z",
  faucet: "http://127.0.0.1:1",
  principal: "agent:7",
  oldFingerprint: "fp:0123456789ab",
  errorCode: "UPSTREAM_UNAVAILABLE",
  message: "The faucet could not be reached",
};

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** A real receiver on loopback answering each request with the next status of `statuses`. */
async function receiver(statuses: number[]) {
  const received: { body: string; signature: string | undefined }[] = [];
  const server = createServer((request: IncomingMessage, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    request.on("end", () => {
      received.push({ body, signature: request.headers["rekey-signature"] as string | undefined });
      response.statusCode = statuses[received.length - 1] ?? 200;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  close = () => new Promise((resolve) => server.close(() => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

describe("createWebhookNotifier", () => {
  it("posts the event signed, retrying a 503 until it is taken", async () => {
    const hook = await receiver([503, 500, 204]);
    const given: string[] = [];
    const notifier = createWebhookNotifier({
      url: hook.url,
      signer,
      clock: { now: () => Date.UTC(2026, 0, 1) },
      sleep: async () => {},
      onGivenUp: (_, reason) => given.push(reason),
    });
    await notifier.emit(event);
    expect(hook.received).toHaveLength(3);
    const last = hook.received[2];
    expect(JSON.parse(last?.body ?? "")).toEqual({ event });
    const t = Date.UTC(2026, 0, 1) / 1000;
    expect(last?.signature).toBe(signer.sign(last?.body ?? "", t));
    expect(given).toEqual([]);
  });

  it("gives up after its attempts, or at once on a 4xx, and never throws", async () => {
    const hook = await receiver([500, 500, 500, 500, 400]);
    const given: string[] = [];
    const notifier = createWebhookNotifier({
      url: hook.url,
      signer,
      clock: { now: Date.now },
      sleep: async () => {},
      onGivenUp: (_, reason) => given.push(reason),
    });
    await notifier.emit(event);
    await notifier.emit(event);
    expect(hook.received).toHaveLength(5);
    expect(given).toEqual(["HTTP 500", "HTTP 400"]);
    await close?.();
    close = undefined;
    await expect(notifier.emit(event)).resolves.toBeUndefined();
    expect(given).toHaveLength(3);
  });
});
