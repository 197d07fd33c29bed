import { describe, expect, it } from "vitest";
import { newDeliveryTarget } from "./target-spec.js";

describe("newDeliveryTarget", () => {
  it("refuses places that depend on the delivering process's directory or PATH", () => {
    for (const spec of [
      { kind: "store", location: "other-store" },
      { kind: "store", location: "host=localhost password=secret" },
      { kind: "exec", command: ["./reload.sh"] },
      { kind: "exec", command: ["reload.sh"] },
    ]) {
      expect(() => newDeliveryTarget(spec, []), JSON.stringify(spec)).toThrow(
        expect.objectContaining({ code: "INVALID_INPUT" }),
      );
    }
    expect(newDeliveryTarget({ kind: "store", location: "/srv/agent-store" }, [])).toMatchObject({
      id: "store-1",
    });
    expect(newDeliveryTarget({ kind: "exec", command: ["/usr/bin/true"] }, [])).toMatchObject({
      id: "exec-1",
    });
  });

  it("refuses a file: store location (over HTTP or MCP) with a hint to give the directory", () => {
    expect(() =>
      newDeliveryTarget({ kind: "store", location: "file:/srv/agent-store" }, []),
    ).toThrow(
      expect.objectContaining({
        code: "INVALID_INPUT",
        hint: expect.stringContaining("without file:"),
      }),
    );
  });
});
