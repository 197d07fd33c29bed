/**
 * One agent's rotation in a store that holds 1000 agents, against the same rotation in a store
 * that holds one, on the file store and on PostgreSQL (issue "One principal, one record":
 * target within 1.5x), and the bytes each rotation writes: for the file store the size of the
 * documents it writes, for PostgreSQL the WAL it generates (what the server really writes).
 * The other 999 agents are stored records (their keys are placeholders: they are never used).
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agent, closeAllDispatchers, createFileStore, createRekey } from "@rekey/core";
import { startSandbox } from "@rekey/sandbox";
import { createPostgresStore } from "@rekey/store-postgres";
import {
  findPostgresBin,
  queryPostgres,
  startTemporaryPostgres,
  TEST_MASTER_KEY_ENV,
} from "@rekey/store-postgres/testing";
import { addPlaceholderAgents } from "./placeholder-agents.mjs";
import { compare } from "./runner.mjs";

const FLEET = 1000;

/** A store with one operator, one real agent, and `extra` stored placeholder agents. */
async function fleet(store, sandbox, extra) {
  const rekey = createRekey({ store, surface: "library", baseUrl: sandbox.url, env: {} });
  const { operatorId } = await rekey.register({ name: "fleet" });
  const { agentId } = await rekey.createAgent({ name: "rotated" });
  if (extra > 0) await addPlaceholderAgents(store, sandbox.url, operatorId, extra);
  return { rekey, rotate: () => rekey.rotateKey({ target: agent(agentId), force: true }) };
}

/** Counts compare-and-set writes through a store. */
function counting(store) {
  let writes = 0;
  return {
    store: new Proxy(store, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (property === "compareAndSet") {
          return (...args) => {
            writes += 1;
            return value.apply(target, args);
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    }),
    writes: () => writes,
  };
}

async function fileStores(sandbox, cleanup) {
  const make = async (extra) => {
    const dir = await mkdtemp(join(tmpdir(), `rekey-bench-fleet-${extra}-`));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const counted = counting(createFileStore({ dir, env: {} }));
    cleanup.push(() => counted.store.close());
    const made = await fleet(counted.store, sandbox, extra);
    cleanup.push(() => made.rekey.close());
    const bytesPerRotation = async () => {
      const before = counted.writes();
      await made.rotate();
      const { size } = await stat(join(dir, "credentials.json"));
      return (counted.writes() - before) * size;
    };
    return { ...made, bytesPerRotation };
  };
  return { one: await make(0), many: await make(FLEET - 1) };
}

async function postgresStores(sandbox, server, cleanup) {
  const make = async (extra, schema) => {
    const store = createPostgresStore({
      url: `${server.url}?schema=${schema}`,
      env: TEST_MASTER_KEY_ENV,
    });
    cleanup.push(() => store.close());
    const made = await fleet(store, sandbox, extra);
    cleanup.push(() => made.rekey.close());
    const walBytes = async () =>
      Number(
        (await queryPostgres(server.url, "SELECT pg_current_wal_lsn() - '0/0' AS b")).rows[0].b,
      );
    const bytesPerRotation = async () => {
      const before = await walBytes();
      await made.rotate();
      return (await walBytes()) - before;
    };
    return { ...made, bytesPerRotation };
  };
  return { one: await make(0, "fleet_one"), many: await make(FLEET - 1, "fleet_many") };
}

async function report(kind, stores) {
  await compare({
    name: `${kind}: rotate one agent among ${FLEET} stored vs among 1`,
    baseline: stores.one.rotate,
    subject: stores.many.rotate,
    warmup: 3,
    runs: 31,
    percentiles: true,
  });
  const one = await stores.one.bytesPerRotation();
  const many = await stores.many.bytesPerRotation();
  console.log(
    `${kind}: bytes written per rotation: ${many} among ${FLEET}, ${one} among 1 (ratio ${(many / one).toFixed(2)}x)`,
  );
}

export default async function principalsBench() {
  const sandbox = await startSandbox({});
  const cleanup = [];
  let server;
  try {
    await report("file store", await fileStores(sandbox, cleanup));
    if (findPostgresBin() === undefined) {
      console.log(
        "PostgreSQL part skipped: no PostgreSQL server programs (initdb) on this machine",
      );
    } else {
      server = await startTemporaryPostgres({ durable: true });
      await report("PostgreSQL store", await postgresStores(sandbox, server, cleanup));
    }
  } finally {
    for (const step of cleanup.reverse()) await step();
    await closeAllDispatchers();
    await sandbox.close();
    await server?.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await principalsBench();
