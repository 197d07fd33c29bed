import { describe, expect, it } from "vitest";
import { isLoopbackHost } from "./loopback.js";

describe("isLoopbackHost", () => {
  it("accepts this machine's names and addresses in every spelling", () => {
    for (const host of [
      "localhost",
      "LOCALHOST",
      "127.0.0.1",
      "127.1.2.3",
      "127.255.255.255",
      "::1",
      "[::1]",
      "0:0:0:0:0:0:0:1",
      "::ffff:127.0.0.1",
    ]) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
  });

  it("refuses names that only look local, and every other address", () => {
    for (const host of [
      "127.example.com",
      "127.0.0.1.nip.io",
      "127.999.0.1",
      "localhost.example.com",
      "evil.localhost",
      "0.0.0.0",
      "::",
      "10.0.0.1",
      "128.0.0.1",
      "example.com",
      "",
    ]) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});
