import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { KILL_POINTS } from "./kill-points.js";

/**
 * The state diagram of a rotation in docs/architecture.md names, for every state, the kill
 * points that stop a process there (`%% kill: State = point, point`). The kill-point suite
 * (tests/adversarial) kills at every point in KILL_POINTS; this test makes sure that list and
 * the diagram agree, so a new step cannot be added without a kill point.
 */
const ARCHITECTURE = new URL("../../../../docs/architecture.md", import.meta.url);

async function rotationDiagram(): Promise<string> {
  const text = await readFile(ARCHITECTURE, "utf8");
  const blocks = [...text.matchAll(/```mermaid\n(stateDiagram-v2\n[\s\S]*?)```/g)];
  const block = blocks.map((match) => match[1] ?? "").find((body) => body.includes("Journaled"));
  if (block === undefined) throw new Error("docs/architecture.md has no rotation state diagram");
  return block;
}

/** The diagram's states, composite ones (`state X {`) aside: their inner states are covered. */
function statesOf(diagram: string): Set<string> {
  const composite = new Set([...diagram.matchAll(/^\s*state (\S+) \{/gm)].map((match) => match[1]));
  const states = new Set<string>();
  for (const line of diagram.split("\n")) {
    const transition = /^\s*(\S+)\s*-->\s*([^:\s]+)/.exec(line);
    if (!transition) continue;
    for (const state of [transition[1], transition[2]]) {
      if (state !== undefined && state !== "[*]" && !composite.has(state)) states.add(state);
    }
  }
  return states;
}

function killLines(diagram: string): Map<string, string[]> {
  const named = new Map<string, string[]>();
  for (const match of diagram.matchAll(/^\s*%% kill: (\S+) = (.+)$/gm)) {
    named.set(
      match[1] ?? "",
      (match[2] ?? "").split(",").map((point) => point.trim()),
    );
  }
  return named;
}

describe("kill points cover the rotation state diagram", () => {
  it("every state of the diagram names at least one kill point", async () => {
    const diagram = await rotationDiagram();
    const named = killLines(diagram);
    const states = [...statesOf(diagram)];
    expect(states.length).toBeGreaterThan(10);
    const missing = states.filter((state) => (named.get(state) ?? []).length === 0);
    expect(missing, "states without a `%% kill:` line").toEqual([]);
  });

  it("every point the diagram names exists, and every point is named in the diagram", async () => {
    const named = [...killLines(await rotationDiagram()).values()].flat();
    const known = new Set<string>(KILL_POINTS);
    expect(named.filter((point) => !known.has(point))).toEqual([]);
    expect(KILL_POINTS.filter((point) => !named.includes(point))).toEqual([]);
  });
});
