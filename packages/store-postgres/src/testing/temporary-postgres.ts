import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chown, mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

/** A throwaway PostgreSQL server for tests and benchmarks, on 127.0.0.1. */
export interface TemporaryPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication, no password). */
  readonly url: string;
  /** Stops the server (by its pid) and deletes its data directory. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The directory holding `initdb` and `postgres`: REKEY_PG_BIN, else the newest Debian/Ubuntu
 * `/usr/lib/postgresql/<major>/bin`, else the PATH. Undefined when there is none.
 */
export function findPostgresBin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates: string[] = [];
  if (env.REKEY_PG_BIN) candidates.push(env.REKEY_PG_BIN);
  const debianRoot = "/usr/lib/postgresql";
  if (existsSync(debianRoot)) {
    const majors = readdirSync(debianRoot)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...majors.map((major) => join(debianRoot, major, "bin")));
  }
  candidates.push(...(env.PATH ?? "").split(delimiter).filter(Boolean));
  return candidates.find(
    (dir) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres")),
  );
}

/** uid and gid of the `postgres` account: initdb and postgres refuse to run as root. */
function postgresAccount(): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith("postgres:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error("Running as root, and there is no postgres account to run PostgreSQL as");
  }
  return { uid: Number(uid), gid: Number(gid) };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("No port was assigned");
  return address.port;
}

async function waitUntilAccepting(url: string, server: ChildProcess, log: () => string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`postgres exited early:\n${log()}`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT 1");
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${error}\n${log()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await client.end().catch(() => {});
    }
  }
}

/**
 * Creates a cluster in a temp directory (`initdb -A trust`) and runs `postgres` on a free
 * loopback port, with fsync off unless `durable` (benchmarks that compare against fsyncing
 * stores want it on): disposable, never for real data. As root it runs as the `postgres`
 * account.
 */
export async function startTemporaryPostgres(
  options: {
    bin?: string | undefined;
    durable?: boolean;
    /** More server settings (`-c name=value`), after those `durable` implies. */
    settings?: Record<string, string>;
  } = {},
): Promise<TemporaryPostgres> {
  const bin = options.bin ?? findPostgresBin();
  const durability = [
    ...(options.durable
      ? []
      : ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]),
    ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => [
      "-c",
      `${name}=${value}`,
    ]),
  ];
  if (bin === undefined) {
    throw new Error("PostgreSQL's server programs (initdb, postgres) were not found");
  }
  const account = process.getuid?.() === 0 ? postgresAccount() : undefined;
  const dir = await mkdtemp(join(tmpdir(), "rekey-pg-"));
  const dataDir = join(dir, "data");
  await mkdir(dataDir, { mode: 0o700 });
  if (account) {
    await chown(dir, account.uid, account.gid);
    await chown(dataDir, account.uid, account.gid);
  }
  const runAs = account ? { uid: account.uid, gid: account.gid } : {};
  await promisify(execFile)(
    join(bin, "initdb"),
    ["-D", dataDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-locale"],
    { ...runAs, env: { ...process.env, LC_ALL: "C" } },
  );
  const port = await freePort();
  let output = "";
  const server = spawn(
    join(bin, "postgres"),
    [
      ...["-D", dataDir, "-p", String(port), "-k", dir],
      ...["-c", "listen_addresses=127.0.0.1", ...durability],
    ],
    { ...runAs, stdio: ["ignore", "ignore", "pipe"] },
  );
  server.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-4000);
  });
  // The server is a process of its own: if this one ends without stop() (a crash, an
  // uncaught error), take it down too rather than leave it running.
  const stopOnExit = () => server.kill("SIGINT");
  process.once("exit", stopOnExit);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      process.off("exit", stopOnExit);
      if (server.exitCode === null) {
        const exited = new Promise((resolve) => server.once("exit", resolve));
        server.kill("SIGINT"); // fast shutdown
        const timer = setTimeout(() => server.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  try {
    await waitUntilAccepting(url, server, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

/** Runs one statement on a connection of its own, as `url`'s user, outside any store. */
export async function queryPostgres(
  url: string,
  text: string,
  values?: unknown[],
): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

/**
 * A key or recovery code the sandbox issues, as a PostgreSQL regular expression: core's
 * `RAW_KEY` (`@rekey/core/testing`, which this module cannot import: benchmarks use it,
 * outside vitest). Bounded the same way: a sealed row's base64url ciphertext holds `lf_` and 43
 * more such characters by chance.
 */
const RAW_KEY_PATTERN = "(^|[^A-Za-z0-9_-])lfr?_[A-Za-z0-9_-]{43}($|[^A-Za-z0-9_-])";

/**
 * Drops `schema` and everything in it (a test's store), connecting as `url`'s user. First it
 * scans every table of the schema (store rows, audit log, backups) for a raw key, and throws
 * after dropping when one holds any: the suites' "no raw key at rest" scan, for PostgreSQL.
 * `allowClearKeys` is for a store that keeps keys in clear on purpose (a benchmark's baseline).
 *
 * @throws Error naming the tables that held a raw key; pg errors.
 */
export async function dropPostgresSchema(
  url: string,
  schema: string,
  options: { allowClearKeys?: boolean } = {},
): Promise<void> {
  const quoted = `"${schema.replaceAll('"', '""')}"`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let holding: string[] = [];
  try {
    if (options.allowClearKeys !== true) holding = await tablesHoldingRawKeys(client, schema);
    await client.query(`DROP SCHEMA IF EXISTS ${quoted} CASCADE`);
  } finally {
    await client.end();
  }
  if (holding.length > 0) {
    throw new Error(
      `A raw key was found at rest in PostgreSQL: ${holding.join(", ")} (keys are stored sealed)`,
    );
  }
}

/** The tables of `schema` with a row whose text holds a raw key. */
async function tablesHoldingRawKeys(client: pg.Client, schema: string): Promise<string[]> {
  const { rows } = await client.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
    [schema],
  );
  const holding: string[] = [];
  for (const { table_name: table } of rows as { table_name: string }[]) {
    const name = `"${schema.replaceAll('"', '""')}"."${table.replaceAll('"', '""')}"`;
    const found = await client.query(`SELECT 1 FROM ${name} t WHERE t::text ~ $1 LIMIT 1`, [
      RAW_KEY_PATTERN,
    ]);
    if (found.rowCount !== null && found.rowCount > 0) holding.push(`${schema}.${table}`);
  }
  return holding;
}
