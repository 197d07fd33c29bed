import { RekeyError } from "@rekey/core";
import { describe, expect, it } from "vitest";
import { problemResponse } from "./problem.js";

describe("problemResponse", () => {
  it("answers a busy store 503 with Retry-After, so a client backs off and retries", async () => {
    const busy = new RekeyError(
      "STORE_BUSY",
      "Cannot read the PostgreSQL store at postgres://h/db: every connection of this process's budget stayed busy",
      { details: { retryAfterSeconds: 1 }, hint: "Retry in a moment." },
    );
    const response = problemResponse(busy, Date.now());
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({
      code: "STORE_BUSY",
      status: 503,
      title: "The credential store is busy",
      retry_after_seconds: 1,
    });
  });
});
