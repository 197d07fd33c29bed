/**
 * A small benchmark runner. Every measurement compares a subject with a baseline in the same
 * run, so machine noise and drift show up in both and the ratio stays meaningful.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import autocannon from "autocannon";

/**
 * Summarises samples (milliseconds): count, min, max, mean, median (= p50) and p99
 * (nearest rank).
 * @param {number[]} samples
 */
export function summarize(samples) {
  if (samples.length === 0) throw new Error("summarize needs at least one sample");
  const sorted = [...samples].sort((left, right) => left - right);
  const rank = (fraction) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    count: sorted.length,
    min: sorted[0],
    max: sorted[sorted.length - 1],
    mean: total / sorted.length,
    median: rank(0.5),
    p50: rank(0.5),
    p99: rank(0.99),
  };
}

const formatMs = (ms) => (ms < 1 ? `${(ms * 1000).toFixed(0)}µs` : `${ms.toFixed(2)}ms`);

async function timeOnce(task) {
  const start = performance.now();
  await task();
  return performance.now() - start;
}

/**
 * Times `subject` against `baseline` (async functions): `warmup` untimed rounds of each, then
 * `runs` timed rounds that alternate which goes first, to cancel drift. Prints one line and
 * returns `{ name, baseline, subject, ratio }` where ratio = subject median / baseline median.
 * Throws whatever a task throws: a failing task is a broken benchmark, not a slow one.
 * @param {{ name: string, baseline: () => Promise<unknown>, subject: () => Promise<unknown>,
 *   warmup?: number, runs?: number, percentiles?: boolean }} spec
 */
export async function compare({
  name,
  baseline,
  subject,
  warmup = 5,
  runs = 31,
  percentiles = false,
}) {
  for (let round = 0; round < warmup; round += 1) {
    await baseline();
    await subject();
  }
  const baselineSamples = [];
  const subjectSamples = [];
  for (let round = 0; round < runs; round += 1) {
    if (round % 2 === 0) {
      baselineSamples.push(await timeOnce(baseline));
      subjectSamples.push(await timeOnce(subject));
    } else {
      subjectSamples.push(await timeOnce(subject));
      baselineSamples.push(await timeOnce(baseline));
    }
  }
  const result = {
    name,
    baseline: summarize(baselineSamples),
    subject: summarize(subjectSamples),
  };
  result.ratio = result.subject.median / result.baseline.median;
  const detail = (stats) =>
    percentiles
      ? `p50 ${formatMs(stats.p50)} p99 ${formatMs(stats.p99)}`
      : `median ${formatMs(stats.median)}`;
  console.log(
    `${name}: subject ${detail(result.subject)} | baseline ${detail(result.baseline)} | ` +
      `ratio ${result.ratio.toFixed(2)}x (${runs} runs each)`,
  );
  return result;
}

/**
 * A task that spawns `command args` and resolves when it exits 0; rejects with its stderr
 * otherwise. Use it as `baseline` or `subject` of {@link compare} to time a CLI.
 * @param {string} command
 * @param {string[]} [args]
 * @param {import("node:child_process").SpawnOptions} [options]
 */
export function timeCommand(command, args = [], options = {}) {
  return () =>
    new Promise((resolve, reject) => {
      const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], ...options });
      let stderr = "";
      child.stderr?.on("data", (chunk) => {
        stderr += chunk;
      });
      child.once("error", reject);
      child.once("exit", (code, signal) =>
        code === 0
          ? resolve()
          : reject(new Error(`${command} exited ${code ?? signal}: ${stderr.slice(0, 500)}`)),
      );
    });
}

/**
 * Spawns a server process and waits for the first `http://...` URL it prints on stdout.
 * Returns `{ url, pid, stop }`; `stop()` sends SIGTERM and waits for exit. With `cpu` (and
 * {@link canPinCpus}) the server runs pinned to that CPU with taskset.
 * @param {string} command
 * @param {string[]} args
 * @param {import("node:child_process").SpawnOptions & { cpu?: number }} [options]
 */
export async function spawnServer(command, args, options = {}) {
  const { cpu, ...spawnOptions } = options;
  const [file, argv] =
    cpu !== undefined && canPinCpus()
      ? ["taskset", ["-c", String(cpu), command, ...args]]
      : [command, args];
  const child = spawn(file, argv, { stdio: ["ignore", "pipe", "inherit"], ...spawnOptions });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      const match = /(https?:\/\/\S+)/.exec(line);
      if (match) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`${command} exited ${code} before listening`)));
  });
  return {
    url,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * Whether processes can be pinned to CPUs here: Linux with taskset and at least two CPUs (one
 * for the load tool, one for the server, so they stop taking turns on the same cores).
 */
export function canPinCpus() {
  if (process.platform !== "linux" || availableParallelism() < 2) return false;
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Pins this process (the load tool, every thread) to `cpu`. Returns a function that gives it
 * every CPU back, or undefined when it cannot pin ({@link canPinCpus}).
 */
export function pinThisProcess(cpu) {
  if (!canPinCpus()) return undefined;
  const pin = (cpus) =>
    execFileSync("taskset", ["-a", "-p", "-c", cpus, String(process.pid)], { stdio: "ignore" });
  pin(String(cpu));
  return () => pin(`0-${availableParallelism() - 1}`);
}

/** CPU time (user + system, ms) a process has used, from /proc; undefined where unavailable. */
export function processCpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]);
    // Linux reports in clock ticks of 10 ms (USER_HZ 100) on every mainstream build.
    return Number.isFinite(ticks) ? ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

async function loadOnce(target, durationSeconds, connections) {
  const cpuBefore = target.pid === undefined ? undefined : processCpuMs(target.pid);
  const result = await autocannon({
    url: target.url,
    method: "POST",
    headers: { "content-type": "application/json" },
    duration: durationSeconds,
    connections,
    pipelining: 1,
    ...(target.body === undefined ? {} : { body: target.body }),
    ...(target.requests === undefined ? {} : { requests: target.requests }),
  });
  const cpuAfter = target.pid === undefined ? undefined : processCpuMs(target.pid);
  if (cpuBefore !== undefined && cpuAfter !== undefined) {
    result.serverCpuMs = cpuAfter - cpuBefore;
  }
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(
      `${target.url}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`,
    );
  }
  return result;
}

function combine(results) {
  const total = results.reduce((sum, result) => sum + result.requests.total, 0);
  const seconds = results.reduce((sum, result) => sum + result.duration, 0);
  const cpuMs = results.map((result) => result.serverCpuMs);
  return {
    requestsPerSecond: total / seconds,
    total,
    latencyP99: Math.max(...results.map((result) => result.latency.p99)),
    // Server CPU per request (µs), when the target named its pid.
    cpuPerRequestUs: cpuMs.every((ms) => ms !== undefined)
      ? (cpuMs.reduce((sum, ms) => sum + ms, 0) * 1000) / total
      : undefined,
  };
}

/**
 * Loads two URLs on loopback with autocannon for `durationSeconds` each with `connections`
 * connections, in `pairs` pairs of short rounds ordered baseline-subject, subject-baseline,
 * ... so a machine that speeds up or slows down during the run weighs on both alike (shared
 * 2-core VMs drift by 2x within seconds). Prints the req/s of each, the ratio of the totals,
 * and the range of the per-pair ratios so a reader sees how noisy the run was. A target with a
 * `pid` (from {@link spawnServer}) also gets its server's CPU time per request, printed and
 * returned as `cpuPerRequestUs`.
 * A target is `{ url, body? , requests? }` (`requests` as autocannon takes them, for bodies
 * that change per request). Throws when either target answers errors, timeouts or non-2xx.
 * @param {{ name: string, baseline: object, subject: object, durationSeconds?: number,
 *   connections?: number, pairs?: number }} spec
 */
export async function compareThroughput({
  name,
  baseline,
  subject,
  durationSeconds = 3,
  connections = 10,
  pairs = 4,
}) {
  const round = durationSeconds / pairs;
  const baselineRounds = [];
  const subjectRounds = [];
  const pairRatios = [];
  for (let pair = 0; pair < pairs; pair++) {
    const order = pair % 2 === 0 ? ["baseline", "subject"] : ["subject", "baseline"];
    const rates = {};
    for (const which of order) {
      const result = await loadOnce(which === "baseline" ? baseline : subject, round, connections);
      (which === "baseline" ? baselineRounds : subjectRounds).push(result);
      rates[which] = result.requests.total / result.duration;
    }
    pairRatios.push(rates.subject / rates.baseline);
  }
  const baselineResult = combine(baselineRounds);
  const subjectResult = combine(subjectRounds);
  const ratio = subjectResult.requestsPerSecond / baselineResult.requestsPerSecond;
  const spread = summarize(pairRatios);
  console.log(
    `${name}: subject ${subjectResult.requestsPerSecond.toFixed(0)} req/s ` +
      `(p99 ${subjectResult.latencyP99}ms) | baseline ${baselineResult.requestsPerSecond.toFixed(0)} req/s ` +
      `(p99 ${baselineResult.latencyP99}ms) | ratio ${ratio.toFixed(2)}x ` +
      `(pairs ${spread.min.toFixed(2)}-${spread.max.toFixed(2)}, median ${spread.p50.toFixed(2)}; ` +
      `${durationSeconds}s each, ${connections} connections)`,
  );
  // What each server spent per request. Only comparable when both were saturated: a server
  // that waits for work wakes up once per request and pays more per request than a busy one.
  if (subjectResult.cpuPerRequestUs !== undefined && baselineResult.cpuPerRequestUs !== undefined) {
    console.log(
      `${name}: server CPU per request ${subjectResult.cpuPerRequestUs.toFixed(1)} µs vs ` +
        `${baselineResult.cpuPerRequestUs.toFixed(1)} µs`,
    );
  }
  return {
    name,
    baseline: baselineResult,
    subject: subjectResult,
    ratio,
    pairRatios,
  };
}
