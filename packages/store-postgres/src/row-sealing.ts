import { type MasterKey, RekeyError } from "@rekey/core";
import {
  countClearKeys,
  explicitKeySource,
  isSealedBackup,
  type KeyRing,
  loadConfiguredMasterKey,
  type MasterKeyEnv,
  newStoreId,
  openSealedBackup,
  RecordSealer,
  type StoreEncryption,
  sealBackup,
} from "@rekey/core/store-kit";
import type pg from "pg";
import type { RekeySql } from "./sql.js";

/**
 * Keys at rest in PostgreSQL: each principal row holds its keys sealed (core's
 * `RecordSealer`), bound to the schema's store id (`store_sealing`) and the row's id. A DBA, a
 * replica or a `pg_dump` reads fingerprints and cooldowns, never a key.
 *
 * Unlike the file store, there is no key file to fall back on: a key kept beside a shared
 * database would be read by whoever reads the database, so a PostgreSQL store needs an
 * explicit source (REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD).
 */

/**
 * @throws RekeyError STORE_LOCKED when `env` names no master key source.
 */
export function requireKeySource(env: MasterKeyEnv): void {
  if (explicitKeySource(env) !== undefined) return;
  throw new RekeyError(
    "STORE_LOCKED",
    "A PostgreSQL store needs a master key: REKEY_MASTER_KEY, REKEY_MASTER_KEY_FILE or REKEY_MASTER_KEY_CMD is not set",
    {
      hint: "Set REKEY_MASTER_KEY_FILE to a 0600 file holding 32 random bytes in base64 (`openssl rand -base64 32`), or REKEY_MASTER_KEY_CMD to a command printing it (a KMS, a password manager). Every host of the fleet needs the same key.",
    },
  );
}

/**
 * The store's sealer: the configured master key (plus `previous`, which still open), and the
 * schema's store id, made on first use.
 *
 * @throws RekeyError STORE_LOCKED (the source gives no valid key); pg errors (the caller
 *   maps them).
 */
export async function openRowSealer(
  client: pg.Pool,
  sql: RekeySql,
  env: MasterKeyEnv,
  previous: readonly MasterKey[],
  source: string,
): Promise<RecordSealer> {
  requireKeySource(env);
  const current = await loadConfiguredMasterKey(env);
  if (current === undefined) throw new RekeyError("INTERNAL", "No master key after the check");
  const keyring: KeyRing = { current, accepted: [current, ...previous] };
  const storeIdOf = async () =>
    ((await client.query(sql.storeId)).rows[0] as { store_id: string } | undefined)?.store_id;
  // Read first: a user who may only read finds the id an owner made.
  let storeId = await storeIdOf();
  if (storeId === undefined) {
    await client.query(sql.claimStoreId, [newStoreId()]);
    storeId = await storeIdOf();
  }
  if (storeId === undefined) throw new RekeyError("INTERNAL", "The store id was not recorded");
  return new RecordSealer(storeId, keyring, source);
}

/**
 * Seals, one row at a time, every principal row holding a key in clear (a schema-2 store) or
 * under a master key other than the current one (re-keying), then marks the store schema 3.
 * Each row is its own atomic statement, by compare-and-set on its version: a row a writer
 * changed meanwhile is left to that writer, who sealed it. Stops at the first failure; the
 * next open goes on from there. Returns how many rows it sealed.
 *
 * @throws RekeyError STORE_LOCKED / STORE_CORRUPT (a row that does not open); pg errors.
 */
export async function sealRows(
  pool: pg.Pool,
  sql: RekeySql,
  sealer: RecordSealer,
): Promise<number> {
  try {
    return await sealRowsOnce(pool, sql, sealer);
  } catch (error) {
    // A user who may only read (or a read-only standby) reads rows in clear as they are;
    // `doctor` says so, and the next writer's open seals them.
    const code = (error as { code?: unknown }).code;
    if (code === "42501" || code === "25006") return 0;
    throw error;
  }
}

/**
 * {@link sealRows}, unless the store says every row is sealed under the current master key
 * already (what a sealing pass records when it is done): what every open does.
 *
 * @throws as {@link sealRows}.
 */
export async function sealRowsOnOpen(
  pool: pg.Pool,
  sql: RekeySql,
  sealer: RecordSealer,
): Promise<number> {
  const { rows } = await pool.query(sql.sealedUnder);
  const state = rows[0] as
    | { sealed_under: string | null; schema_version: number | null }
    | undefined;
  if (state?.sealed_under === sealer.keyring.current.id && Number(state.schema_version) >= 3) {
    return 0;
  }
  return sealRows(pool, sql, sealer);
}

/**
 * Says on the next open whether to look for rows to seal: `keyId` once every row is sealed
 * under it, undefined (look) when a store writing in clear (the benchmark's baseline) opens.
 * @throws pg errors.
 */
export async function recordSealedUnder(
  pool: pg.Pool,
  sql: RekeySql,
  keyId: string | undefined,
): Promise<void> {
  const [addColumn, update] = sql.recordSealedUnder as [string, string];
  const { rows } = await pool.query(sql.sealedUnder);
  if ((rows[0] as { sealed_under: string | null } | undefined)?.sealed_under === (keyId ?? null)) {
    return;
  }
  await pool.query(addColumn);
  await pool.query(update, [keyId ?? null]);
}

/**
 * Creates the migration backup table under the set-up lock. Handles opening one store at once
 * all seal it; two `CREATE TABLE IF NOT EXISTS` racing fail one of them on PostgreSQL's catalog
 * (23505 on pg_type), so they take turns, and the second finds the table there.
 * @throws pg errors.
 */
async function createMigrationBackup(pool: pg.Pool, sql: RekeySql): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1), 0)", [sql.lockNamespace]);
    await client.query(sql.createMigrationBackup);
    await client.query("COMMIT");
    client.release();
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    // A connection that failed mid-transaction is not given back to the pool.
    client.release(true);
    throw error;
  }
}

async function sealRowsOnce(pool: pg.Pool, sql: RekeySql, sealer: RecordSealer): Promise<number> {
  const toReseal = await pool.query(sql.anyToReseal, [`rk1:${sealer.keyring.current.id}:%`]);
  const { rows } = (toReseal.rows[0] as { needed: boolean }).needed
    ? await pool.query(sql.principalRows)
    : { rows: [] };
  let sealed = 0;
  let backupReady = false;
  for (const row of rows as { id: string; version: string; data: Record<string, unknown> }[]) {
    if (!sealer.needsResealing(row.data)) continue;
    const opened = sealer.openRecord(row.id, row.data) as object;
    const resealed = JSON.stringify(sealer.sealRecord(row.id, opened));
    if (countClearKeys([row.data]) === 0) {
      // Re-keying (sealed under another master key): nothing in clear to keep a backup of;
      // the old key opens the row until `rekey-master` is done.
      await pool.query(sql.resealPrincipal, [row.id, row.version, resealed]);
    } else {
      if (!backupReady) {
        await createMigrationBackup(pool, sql);
        backupReady = true;
      }
      await pool.query(sql.resealPrincipalWithBackup, [
        row.id,
        row.version,
        resealed,
        sealBackup(
          JSON.stringify(row.data),
          sealer.keyring.current,
          sealer.storeId,
          migrationBackupName(row.id),
        ),
      ]);
    }
    sealed += 1;
  }
  // Readers of schema 2 stop here instead of writing keys in clear again.
  const meta = await pool.query(sql.metaSchemaVersion);
  if (Number((meta.rows[0] as { schema_version?: unknown } | undefined)?.schema_version) < 3) {
    await pool.query(sql.markSealed);
  }
  await sealLegacyBackup(pool, sql, sealer);
  // Every row read was sealed (or left to a writer who sealed it): the next open need not look.
  await recordSealedUnder(pool, sql, sealer.keyring.current.id);
  return sealed;
}

/** The name a principal row's migration backup is sealed for (bound into its ciphertext). */
function migrationBackupName(id: string): string {
  return `principals_schema_2#${id}`;
}

/**
 * The principal records as they were before the schema-2 → 3 migration sealed their keys
 * (from the `principals_schema_2` backup table), keys opened: written back through the store
 * (`compareAndSet`), they are sealed again. Empty when the store was never migrated.
 *
 * @throws RekeyError STORE_LOCKED (sealed under a master key not given); STORE_CORRUPT (a
 *   backup row changed, or moved from another row or store); pg errors.
 */
export async function readMigrationBackup(
  pool: pg.Pool,
  sql: RekeySql,
  sealer: RecordSealer,
  source: string,
): Promise<Record<string, unknown>> {
  const { rows } = await pool.query(sql.migrationBackupExists);
  if (!(rows[0] as { present: boolean }).present) return {};
  const backup = await pool.query(sql.migrationBackupRows);
  const records: Record<string, unknown> = {};
  for (const row of backup.rows as { id: string; text: string }[]) {
    const where = `${source} (principals_schema_2, row ${JSON.stringify(row.id.slice(0, 200))})`;
    const text = openSealedBackup(row.text, sealer.keyring.accepted, where);
    if (JSON.parse(row.text).name !== migrationBackupName(row.id)) {
      throw new RekeyError("STORE_CORRUPT", `${where} is the backup of another row`);
    }
    records[row.id] = JSON.parse(text);
  }
  return records;
}

/** Seals, row by row, the schema-1 table a migration kept: it holds every key it had. */
async function sealLegacyBackup(pool: pg.Pool, sql: RekeySql, sealer: RecordSealer) {
  const { rows } = await pool.query(sql.legacyBackup);
  if (!(rows[0] as { present: boolean }).present) return;
  const backup = await pool.query(sql.legacyBackupRows);
  for (const row of backup.rows as { id: number; text: string }[]) {
    if (isSealedBackup(row.text)) continue;
    const name = `credentials_schema_1#${row.id}`;
    await pool.query(sql.sealLegacyBackupRow, [
      row.id,
      sealBackup(row.text, sealer.keyring.current, sealer.storeId, name),
    ]);
  }
}

/** Whether every key in the principal rows is sealed. Key-free. @throws pg errors. */
export async function rowEncryption(
  pool: pg.Pool,
  sql: RekeySql,
  sealer: RecordSealer | undefined,
): Promise<StoreEncryption> {
  const { rows } = await pool.query(sql.countClearKeys);
  const clearKeys = Number((rows[0] as { clear: string }).clear);
  return {
    state: clearKeys === 0 ? "encrypted" : "clear",
    clearKeys,
    ...(sealer === undefined
      ? {}
      : { keyId: sealer.keyring.current.id, keySource: sealer.keyring.current.source }),
  };
}
