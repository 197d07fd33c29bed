import { isRekeyError } from "@rekey/core";
import { describe, expect, it } from "vitest";
import { parseHttpConfig } from "./config.js";

const tokens = JSON.stringify([{ name: "ci", sha256: "a".repeat(64), scopes: ["status"] }]);

describe("parseHttpConfig --store", () => {
  it("refuses a database password on the command line, and takes it from REKEY_STORE", async () => {
    const url = "postgres://rekey:s3cret@127.0.0.1/rekey";
    const error = await parseHttpConfig(["--store", url], { REKEY_HTTP_TOKENS: tokens }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isRekeyError(error, "CONFIG_INVALID")).toBe(true);
    expect((error as { hint?: string }).hint).toContain("PGPASSWORD");
    expect(String((error as Error).message)).not.toContain("s3cret");
    const config = await parseHttpConfig([], { REKEY_HTTP_TOKENS: tokens, REKEY_STORE: url });
    expect(config.storeSpec).toBe(url);
  });
});
