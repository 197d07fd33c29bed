import { performance } from "node:perf_hooks";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const scripts = process.argv.slice(2);
const times = Object.fromEntries(scripts.map((s) => [s, []]));
for (let i = 0; i < 15; i++)
  for (const script of scripts) {
    const t = performance.now();
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [script],
      env: { PATH: process.env.PATH, REKEY_HOME: "/tmp/rekey-cold-home" },
      stderr: "inherit",
    });
    const client = new Client({ name: "b", version: "0" });
    await client.connect(transport);
    await client.listTools();
    times[script].push(performance.now() - t);
    await client.close();
  }
for (const [s, t] of Object.entries(times)) {
  t.sort((a, b) => a - b);
  console.log(s, "median", t[7].toFixed(0), "min", t[0].toFixed(0));
}
