#!/usr/bin/env node
// The entry point, kept small: a stdio session's handshake is answered by the front from the
// precomputed handshake (baked in by build.mjs) while nothing else is loaded; main.ts (the MCP
// SDK, zod, core, the store) loads when the session needs it.
import type { Handshake } from "./handshake.js";
import { frontCanServe, type StdioFront, startStdioFront } from "./stdio-front.js";

declare const __REKEY_MCP_HANDSHAKE__: Handshake;

const front: StdioFront | undefined = frontCanServe(process.argv.slice(2))
  ? startStdioFront(__REKEY_MCP_HANDSHAKE__, () => void start())
  : undefined;

async function start(): Promise<void> {
  const { run } = await import("./main.js");
  run(front);
}

if (front === undefined) await start();
