import { isRekeyError } from "@rekey/core";
import { describe, expect, it } from "vitest";
import { parseOptions } from "./options.js";

function refusal(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseOptions(argv, env);
  } catch (error) {
    if (isRekeyError(error, "CONFIG_INVALID")) return error.message;
    throw error;
  }
  throw new Error("expected CONFIG_INVALID");
}

describe("parseOptions", () => {
  it("defaults to stdio with the environment's profile and store", () => {
    expect(parseOptions([], { REKEY_PROFILE: "work", REKEY_STORE: "memory" })).toMatchObject({
      transport: { kind: "stdio" },
      profile: "work",
      store: "memory",
      revealKeys: false,
    });
  });

  it("prefers flags to the environment", () => {
    const options = parseOptions(["--profile", "cli", "--store", "/tmp/x"], {
      REKEY_PROFILE: "env",
      REKEY_STORE: "memory",
    });
    expect(options).toMatchObject({ profile: "cli", store: "/tmp/x" });
  });

  it("acts as a stored principal with --as, else REKEY_AS", () => {
    expect(parseOptions(["--as", "agent:7"], { REKEY_AS: "agent:8" }).actAs).toBe("agent:7");
    expect(parseOptions([], { REKEY_AS: "agent:8" }).actAs).toBe("agent:8");
    expect(parseOptions([], {}).actAs).toBeUndefined();
  });

  it("refuses a database password in --store, but takes it from REKEY_STORE", () => {
    const message = refusal(["--store", "postgres://rekey:s3cret@127.0.0.1/rekey"]);
    expect(message).toContain("password on the command line");
    expect(message).not.toContain("s3cret");
    const url = "postgres://rekey:s3cret@127.0.0.1/rekey";
    expect(parseOptions([], { REKEY_STORE: url }).store).toBe(url);
  });

  it("turns reveal on only with REKEY_MCP_REVEAL_KEYS=1", () => {
    expect(parseOptions([], { REKEY_MCP_REVEAL_KEYS: "1" }).revealKeys).toBe(true);
    expect(parseOptions([], { REKEY_MCP_REVEAL_KEYS: "0" }).revealKeys).toBe(false);
  });

  it("serves HTTP on 127.0.0.1 by default", () => {
    expect(parseOptions(["--http", "8080"], {}).transport).toEqual({
      kind: "http",
      host: "127.0.0.1",
      port: 8080,
    });
  });

  it("needs a bearer token for a non-loopback host", () => {
    expect(refusal(["--http", "8080", "--host", "0.0.0.0"])).toMatch(/without a bearer token/);
    expect(
      parseOptions(["--http", "8080", "--host", "0.0.0.0"], { REKEY_MCP_BEARER_TOKEN: "t" })
        .transport,
    ).toMatchObject({
      host: "0.0.0.0",
    });
    expect(
      parseOptions(
        ["--http", "8080", "--host", "10.0.0.5", "--bearer-token-file", "/run/token"],
        {},
      ).bearerTokenFile,
    ).toBe("/run/token");
  });

  it("refuses bad ports, unknown flags and HTTP flags without --http", () => {
    expect(refusal(["--http", "http"])).toMatch(/port number/);
    expect(refusal(["--http", "70000"])).toMatch(/port number/);
    expect(refusal(["--verbose"])).toMatch(/verbose/);
    expect(refusal(["--host", "127.0.0.1"])).toMatch(/only apply with --http/);
    expect(refusal(["--tls-cert", "c.pem", "--tls-key", "k.pem"])).toMatch(
      /only apply with --http/,
    );
  });

  it("takes TLS files as a pair and a connection cap", () => {
    expect(
      parseOptions(["--http", "0", "--tls-cert", "c.pem", "--tls-key", "k.pem"], {}).tls,
    ).toEqual({ certFile: "c.pem", keyFile: "k.pem" });
    expect(refusal(["--http", "0", "--tls-cert", "c.pem"])).toMatch(/go together/);
    expect(parseOptions(["--http", "0", "--max-connections", "64"], {}).maxConnections).toBe(64);
    for (const bad of ["0", "-1", "many", "1000000"]) {
      expect(refusal(["--http", "0", "--max-connections", bad])).toMatch(/--max-connections/);
    }
  });
});
