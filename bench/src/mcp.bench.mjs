/**
 * rekey-mcp cold start: spawn + `initialize` + `tools/list` over stdio with the SDK client,
 * against the same sequence on a minimal SDK server with one tool
 * (bench/src/fixtures/minimal-mcp-server.mjs), in the same run. Hosts spawn an MCP server per
 * session, so this is the delay a user sees before the tools appear. Target: within 1.1x.
 * And against a server the size of the public lightning-wallet-mcp (59 tools with zod schemas,
 * bench/src/fixtures/wallet-sized-mcp-server.mjs): target 0.5x.
 *
 * rekey-mcp runs its real start-up: a file store in a fresh REKEY_HOME, opened before it
 * answers. It is measured from its build (apps/mcp/dist/bin.js; `pnpm build` first).
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { compare } from "./runner.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const baselineServer = join(here, "fixtures", "minimal-mcp-server.mjs");
const walletSizedServer = join(here, "fixtures", "wallet-sized-mcp-server.mjs");
const rekeyMcp = join(here, "..", "..", "apps", "mcp", "dist", "bin.js");

/** One host session start: spawn, initialize, list the tools, then stop the server. */
function coldStart(script, env, expectedTools) {
  return async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [script],
      env: { PATH: process.env.PATH ?? "", ...env },
      stderr: "ignore",
    });
    const client = new Client({ name: "bench", version: "0.0.0" });
    await client.connect(transport);
    const { tools } = await client.listTools();
    if (tools.length !== expectedTools) {
      throw new Error(`${script}: expected ${expectedTools} tools, got ${tools.length}`);
    }
    await client.close();
  };
}

export default async function mcpBench() {
  if (!existsSync(rekeyMcp)) throw new Error(`${rekeyMcp} is missing: run pnpm build first`);
  const home = await mkdtemp(join(tmpdir(), "rekey-mcp-bench-"));
  try {
    const result = await compare({
      name: "rekey-mcp cold start (spawn + initialize + tools/list, stdio)",
      baseline: coldStart(baselineServer, {}, 1),
      subject: coldStart(rekeyMcp, { REKEY_HOME: home }, 4),
      warmup: 3,
      runs: 21,
    });
    const verdict = result.ratio <= 1.1 ? "within" : "OVER";
    console.log(
      `rekey-mcp cold start: ratio ${result.ratio.toFixed(2)}x, ${verdict} the 1.1x target`,
    );
    const walletSized = await compare({
      name: "rekey-mcp cold start vs a server the public one's size (59 zod tools)",
      baseline: coldStart(walletSizedServer, {}, 59),
      subject: coldStart(rekeyMcp, { REKEY_HOME: home }, 4),
      warmup: 3,
      runs: 21,
    });
    console.log(
      `rekey-mcp cold start vs 59 tools: ratio ${walletSized.ratio.toFixed(2)}x, ${walletSized.ratio <= 0.5 ? "within" : "OVER"} the 0.5x target`,
    );
    return result;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
