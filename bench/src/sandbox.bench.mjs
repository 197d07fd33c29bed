/**
 * Sandbox throughput and latency on loopback, each against a bare node:http server that
 * parses the same request and answers the same JSON (bench/src/fixtures/bare-json-server.mjs).
 * The ratio is what the sandbox's validation, hashing, state and key generation cost on top
 * of plain HTTP + JSON. Both servers run in their own processes; the load comes from this one.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { compare, compareThroughput, spawnServer } from "./runner.mjs";

const AGENT_POOL_SIZE = 100;
const CONNECTIONS = 10;
const DURATION_SECONDS = 3;

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const reply = await response.json();
  if (!reply.success) throw new Error(`${body.action} failed: ${reply.code} ${reply.error}`);
  return reply;
}

/**
 * Autocannon requests that each rotate a key taken from `pool` and put the new key back: a
 * key is in flight on one connection at a time, so no rotation loses a race.
 */
function rotationRequests(pool, counters) {
  return [
    {
      method: "POST",
      setupRequest(request) {
        const key = pool.shift();
        if (key === undefined) throw new Error("rotation key pool ran dry");
        return {
          ...request,
          body: JSON.stringify({ action: "regenerate_operator_key", api_key: key }),
        };
      },
      onResponse(_status, body) {
        const reply = JSON.parse(body);
        if (reply.success && typeof reply.api_key === "string") {
          pool.push(reply.api_key);
          counters.rotated += 1;
        } else {
          counters.failed += 1;
        }
      },
    },
  ];
}

export default async function runSandboxBench() {
  const sandboxBin = join(dirname(fileURLToPath(import.meta.resolve("@rekey/sandbox"))), "bin.js");
  if (!existsSync(sandboxBin)) {
    throw new Error(`${sandboxBin} is missing: run pnpm --filter @rekey/sandbox build first`);
  }
  const sandbox = await spawnServer(process.execPath, [sandboxBin, "--quiet"]);
  let bare;
  try {
    const operator = await post(sandbox.url, { action: "register", name: "bench" });
    const agentKeys = [];
    for (let index = 0; index < AGENT_POOL_SIZE; index += 1) {
      const agent = await post(sandbox.url, {
        action: "create_agent",
        api_key: operator.api_key,
        name: `bench-${index}`,
      });
      agentKeys.push(agent.api_key);
    }
    const whoamiBody = { action: "whoami", api_key: operator.api_key };
    const whoamiReply = await post(sandbox.url, whoamiBody);
    const sampleRotation = await post(sandbox.url, {
      action: "regenerate_operator_key",
      api_key: agentKeys.pop(),
    });
    agentKeys.push(sampleRotation.api_key);
    bare = await spawnServer(
      process.execPath,
      [join(dirname(fileURLToPath(import.meta.url)), "fixtures", "bare-json-server.mjs")],
      {
        env: {
          ...process.env,
          BARE_REPLIES: JSON.stringify({
            whoami: whoamiReply,
            regenerate_operator_key: sampleRotation,
          }),
        },
      },
    );

    const results = [];
    results.push(
      await compareThroughput({
        name: "sandbox whoami/s vs bare node:http",
        baseline: { url: bare.url, body: JSON.stringify(whoamiBody) },
        subject: { url: sandbox.url, body: JSON.stringify(whoamiBody) },
        durationSeconds: DURATION_SECONDS,
        connections: CONNECTIONS,
      }),
    );

    const bareCounters = { rotated: 0, failed: 0 };
    const sandboxCounters = { rotated: 0, failed: 0 };
    const barePool = Array.from({ length: AGENT_POOL_SIZE }, () => sampleRotation.api_key);
    results.push(
      await compareThroughput({
        name: "sandbox rotations/s vs bare node:http",
        baseline: { url: bare.url, requests: rotationRequests(barePool, bareCounters) },
        subject: { url: sandbox.url, requests: rotationRequests(agentKeys, sandboxCounters) },
        durationSeconds: DURATION_SECONDS,
        connections: CONNECTIONS,
      }),
    );
    if (sandboxCounters.failed > 0 || bareCounters.failed > 0) {
      throw new Error(
        `rotations failed: sandbox ${sandboxCounters.failed}, bare ${bareCounters.failed}`,
      );
    }
    console.log(`  (sandbox committed ${sandboxCounters.rotated} rotations)`);

    // One client, one request at a time: the latency a rekey rotation sees from the sandbox.
    let chainKey = agentKeys.pop();
    results.push(
      await compare({
        name: "sandbox rotation latency (sequential) vs bare node:http",
        baseline: () => post(bare.url, { action: "regenerate_operator_key", api_key: "x" }),
        subject: async () => {
          const reply = await post(sandbox.url, {
            action: "regenerate_operator_key",
            api_key: chainKey,
          });
          chainKey = reply.api_key;
        },
        warmup: 20,
        runs: 200,
        percentiles: true,
      }),
    );
    return results;
  } finally {
    await bare?.stop();
    await sandbox.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await runSandboxBench();
}
