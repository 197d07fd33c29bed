/**
 * The SQL of one rekey schema. The schema name has been checked to be a plain identifier
 * (see `parsePostgresUrl`), so it is safe to write into statement text; values always travel
 * as parameters.
 */
export function sqlFor(schema: string) {
  const meta = `"${schema}".store_meta`;
  const principals = `"${schema}".principals`;
  const idempotency = `"${schema}".idempotency`;
  const auditLog = `"${schema}".audit_log`;
  // The store's id, which every sealed key is bound to (see row-sealing.ts).
  const sealing = `"${schema}".store_sealing`;
  // Schema 1 kept the whole store in this one row; it is migrated once, then renamed.
  const legacyCredentials = `"${schema}".credentials`;
  // The schema-2 → 3 migration's backup (see row-sealing.ts).
  const migrationBackup = `"${schema}".principals_schema_2`;
  // One channel per schema: several rekey schemas can share a database.
  const channel = `${schema}.credentials`;
  return {
    meta,
    principals,
    idempotency,
    auditLog,
    legacyCredentials,
    channel,
    /** Advisory lock keys are (namespace, name) pairs of int4 hashes; rekey's namespace. */
    lockNamespace: `rekey:${schema}`,

    /** Whether every object `setUp` makes exists and no schema-1 table waits to be migrated
     * (checked first, so a user without CREATE rights can use tables an owner made). */
    isSetUp: `SELECT to_regclass('${meta}') IS NOT NULL
        AND to_regclass('${principals}') IS NOT NULL
        AND to_regclass('${idempotency}') IS NOT NULL
        AND to_regclass('${auditLog}') IS NOT NULL
        AND to_regclass('${sealing}') IS NOT NULL
        AND to_regclass('${legacyCredentials}') IS NULL
        AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('${meta}')
                      AND tgname = 'notify_store_change') AS ready`,

    /** Idempotent; run under an advisory lock so that two first users do not race. */
    setUp: [
      `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
      // One row: the store's version (bumped by every write, which also serialises writers
      // for the few milliseconds of a write) and the profiles, which are small and change
      // rarely. Principals and idempotency records are rows of their own, each written by
      // compare-and-set on its version, so rotating one agent rewrites one row. \`json\`, not
      // \`jsonb\`: it keeps the text as written, key order included, so a stored HTTP reply is
      // replayed byte for byte.
      `CREATE TABLE IF NOT EXISTS ${meta} (
        id smallint PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL CHECK (version > 0),
        meta_version bigint NOT NULL,
        purged_below bigint NOT NULL DEFAULT 0,
        data json NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      // A row whose data is NULL is a tombstone: readers that know an older version learn of
      // the delete from it (tombstones older than purged_below are purged).
      `CREATE TABLE IF NOT EXISTS ${principals} (
        id text PRIMARY KEY,
        version bigint NOT NULL,
        data json
      )`,
      `CREATE INDEX IF NOT EXISTS principals_version ON ${principals} (version)`,
      `CREATE TABLE IF NOT EXISTS ${idempotency} (
        slot text PRIMARY KEY,
        version bigint NOT NULL,
        data json
      )`,
      `CREATE INDEX IF NOT EXISTS idempotency_version ON ${idempotency} (version)`,
      `CREATE TABLE IF NOT EXISTS ${auditLog} (
        seq bigint PRIMARY KEY CHECK (seq > 0),
        entry jsonb NOT NULL,
        appended_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE IF NOT EXISTS ${sealing} (
        id smallint PRIMARY KEY CHECK (id = 1),
        store_id text NOT NULL
      )`,
      // Every write, by any client, tells the watchers of this schema the new version.
      `CREATE OR REPLACE FUNCTION "${schema}".notify_store_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify(TG_TABLE_SCHEMA || '.credentials', NEW.version::text);
          RETURN NULL;
        END
        $$`,
      `DROP TRIGGER IF EXISTS notify_store_change ON ${meta}`,
      `CREATE TRIGGER notify_store_change AFTER INSERT OR UPDATE ON ${meta}
        FOR EACH ROW EXECUTE FUNCTION "${schema}".notify_store_change()`,
    ],

    /** The schema-1 row, if a table of that schema exists (read under the setup lock). */
    legacyExists: `SELECT to_regclass('${legacyCredentials}') IS NOT NULL AS present`,
    legacyRow: `SELECT version, data FROM ${legacyCredentials} WHERE id = 1`,
    /** Keeps the schema-1 table as the backup of what was migrated. */
    retireLegacy: `ALTER TABLE ${legacyCredentials} RENAME TO credentials_schema_1`,
    metaExists: `SELECT EXISTS (SELECT 1 FROM ${meta}) AS present`,

    /** $1: a new store id, kept only if the store has none yet. */
    claimStoreId: `INSERT INTO ${sealing} (id, store_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`,
    storeId: `SELECT store_id FROM ${sealing} WHERE id = 1`,
    /**
     * The master key id every principal row was last found sealed under (by the end of a
     * sealing pass), and the store document's schema version: when that is the current key
     * and schema 3, an open has nothing to seal and skips looking (looking makes the server
     * parse every row: 20 ms of a cold read of 1000 agents). Read through \`to_jsonb\` so a
     * schema set up before the column existed reads NULL instead of failing.
     */
    sealedUnder: `SELECT to_jsonb(s) ->> 'sealed_under' AS sealed_under,
        (SELECT (data->>'schemaVersion')::int FROM ${meta} WHERE id = 1) AS schema_version
      FROM ${sealing} s WHERE id = 1`,
    /** $1: the key id every row is now sealed under (NULL: unknown, look on the next open). */
    recordSealedUnder: [
      `ALTER TABLE ${sealing} ADD COLUMN IF NOT EXISTS sealed_under text`,
      `UPDATE ${sealing} SET sealed_under = $1 WHERE id = 1 AND sealed_under IS DISTINCT FROM $1`,
    ],
    principalRows: `SELECT id, version, data FROM ${principals} WHERE data IS NOT NULL`,
    /**
     * Whether any key of a principal row is not sealed under the current master key ($1:
     * \`rk1:<its id>:%\`): answered by the server, so an open with nothing to seal (every open
     * but the first after an upgrade or a re-keying) does not ship every row to the client.
     */
    anyToReseal: `SELECT EXISTS (SELECT 1 FROM ${principals} p,
        LATERAL (SELECT p.data->>'key' AS key UNION ALL
                 SELECT a->>'key' FROM json_array_elements(
                   CASE WHEN json_typeof(p.data->'alternates') = 'array'
                        THEN p.data->'alternates' ELSE '[]'::json END) a) k
      WHERE p.data IS NOT NULL AND k.key IS NOT NULL AND k.key NOT LIKE $1) AS needed`,
    /** How many keys of principal rows are not sealed (the \`doctor\` line). */
    countClearKeys: `SELECT count(*) AS clear FROM ${principals} p,
        LATERAL (SELECT p.data->>'key' AS key UNION ALL
                 SELECT a->>'key' FROM json_array_elements(
                   CASE WHEN json_typeof(p.data->'alternates') = 'array'
                        THEN p.data->'alternates' ELSE '[]'::json END) a) k
      WHERE p.data IS NOT NULL AND k.key IS NOT NULL AND k.key NOT LIKE 'rk1:%'`,
    /** The schema-1 table kept as a backup, as text, when it exists. */
    legacyBackup: `SELECT to_regclass('"${schema}".credentials_schema_1') IS NOT NULL AS present`,
    legacyBackupRows: `SELECT id, data::text AS text FROM "${schema}".credentials_schema_1`,
    /** $1: id, $2: the row's data sealed whole (see core's sealBackup). */
    sealLegacyBackupRow: `UPDATE "${schema}".credentials_schema_1 SET data = $2::json WHERE id = $1`,
    /** $1: id, $2: the version read, $3: the same record with its keys sealed. */
    resealPrincipal: `UPDATE ${principals} SET data = $3 WHERE id = $1 AND version = $2`,
    /**
     * The backup of the schema-2 → 3 migration: each principal row as it was before its keys
     * were sealed, itself sealed whole (core's sealBackup), so the backup holds no key in clear.
     */
    createMigrationBackup: `CREATE TABLE IF NOT EXISTS ${migrationBackup} (
        id text PRIMARY KEY,
        version bigint NOT NULL,
        data json NOT NULL,
        backed_up_at timestamptz NOT NULL DEFAULT now()
      )`,
    /**
     * One row's migration, in one statement (atomic): the row as it was, sealed whole ($4),
     * into the backup (the first backup of a row is kept), and the row's keys sealed ($3), by
     * compare-and-set on the version read ($2).
     */
    resealPrincipalWithBackup: `WITH backup AS (
        INSERT INTO ${migrationBackup} (id, version, data)
        SELECT $1, $2, $4::json
        WHERE EXISTS (SELECT 1 FROM ${principals} WHERE id = $1 AND version = $2)
        ON CONFLICT (id) DO NOTHING
      )
      UPDATE ${principals} SET data = $3 WHERE id = $1 AND version = $2`,
    migrationBackupExists: `SELECT to_regclass('${migrationBackup}') IS NOT NULL AS present`,
    migrationBackupRows: `SELECT id, data::text AS text FROM ${migrationBackup} ORDER BY id`,
    metaSchemaVersion: `SELECT (data->>'schemaVersion')::int AS schema_version FROM ${meta} WHERE id = 1`,
    /** Marks the store document schema 3 (keys sealed), keeping the rest of the meta row. */
    markSealed: `UPDATE ${meta} SET data = (json_build_object('schemaVersion', 3)::jsonb
        || (data::jsonb - 'schemaVersion'))::json
      WHERE id = 1 AND (data->>'schemaVersion')::int < 3`,

    /**
     * $1: the version the caller already holds (-1: none). Rows changed since then (all rows
     * for -1), in one statement, so they are of one snapshot.
     */
    read: `SELECT m.version, m.meta_version, m.purged_below, m.data AS meta,
        CASE WHEN m.version = $1 THEN NULL ELSE (
          SELECT coalesce(json_agg(json_build_array(id, version, data)), '[]')
          FROM ${principals} WHERE version > $1) END AS principals,
        CASE WHEN m.version = $1 THEN NULL ELSE (
          SELECT coalesce(json_agg(json_build_array(slot, version, data)), '[]')
          FROM ${idempotency} WHERE version > $1) END AS idempotency
      FROM ${meta} m WHERE m.id = 1`,
    version: `SELECT coalesce((SELECT version FROM ${meta} WHERE id = 1), 0) AS version`,

    /** $1: meta data. Only when nothing was ever written. */
    insertMeta: `INSERT INTO ${meta} (id, version, meta_version, data) VALUES (1, 1, 1, $1)
      ON CONFLICT (id) DO NOTHING RETURNING version`,
    /** $1: the version of the schema-1 row; $2: meta data. */
    insertMigratedMeta: `INSERT INTO ${meta} (id, version, meta_version, data) VALUES (1, $1, $1, $2)`,
    /** Takes the write turn: the new version. */
    bumpVersion: `UPDATE ${meta} SET version = version + 1, updated_at = now() WHERE id = 1
      RETURNING version, purged_below`,
    /** $1: expected meta_version, $2: new version, $3: data. */
    setMeta: `UPDATE ${meta} SET data = $3, meta_version = $2 WHERE id = 1 AND meta_version = $1`,
    /** Compare-and-set writes of principal rows and of idempotency rows (see `rowWrites`). */
    principalWrites: rowWrites(principals, "id"),
    idempotencyWrites: rowWrites(idempotency, "slot"),
    /** $1: purge tombstones at or below this version. */
    purgeTombstones: [
      `DELETE FROM ${principals} WHERE data IS NULL AND version <= $1`,
      `DELETE FROM ${idempotency} WHERE data IS NULL AND version <= $1`,
      `UPDATE ${meta} SET purged_below = $1 WHERE id = 1`,
    ],

    /** Serialises appenders; readers are not blocked. */
    lockAuditLog: `LOCK TABLE ${auditLog} IN SHARE ROW EXCLUSIVE MODE`,
    lastAuditEntry: `SELECT entry FROM ${auditLog} ORDER BY seq DESC LIMIT 1`,
    appendAudit: `INSERT INTO ${auditLog} (seq, entry) VALUES ($1, $2)`,
    /**
     * One statement, no table lock: appends entry $2 as seq $1 only if the log's last entry is
     * still the one whose hash is $3 (the one this handle appended last); a racing appender
     * that took seq $1 first makes it insert nothing (the primary key), as does any other last
     * entry. Zero rows: the caller appends under the lock instead.
     */
    appendAuditAfter: `INSERT INTO ${auditLog} (seq, entry)
      SELECT $1, $2 WHERE (SELECT entry->>'hash' FROM ${auditLog} ORDER BY seq DESC LIMIT 1) = $3
      ON CONFLICT (seq) DO NOTHING`,
    /** {@link appendAuditAfter} committed without waiting for the WAL flush (SET LOCAL). */
    appendAuditAfterAsynchronously: `WITH asynchronous AS (
        SELECT set_config('synchronous_commit', 'off', true))
      INSERT INTO ${auditLog} (seq, entry)
      SELECT $1, $2 FROM asynchronous
      WHERE (SELECT entry->>'hash' FROM ${auditLog} ORDER BY seq DESC LIMIT 1) = $3
      ON CONFLICT (seq) DO NOTHING`,
    readAudit: `SELECT entry FROM ${auditLog} ORDER BY seq`,

    /** Write probes that change nothing: they fail as a real write would (privileges, standby). */
    probeWrites: [
      `UPDATE ${meta} SET version = version WHERE false`,
      `UPDATE ${principals} SET version = version WHERE false`,
      `INSERT INTO ${auditLog} (seq, entry) SELECT 1, '{}'::jsonb WHERE false`,
    ],
  };
}

/** What a one-statement write changes (see {@link oneStatementWrite}). */
export interface WriteShape {
  /** The meta row's data too, by compare-and-set on its `meta_version`. */
  readonly meta: boolean;
  /** Rows of each table, updates (delete: data NULL) first, then inserts. */
  readonly principals: { readonly updates: number; readonly inserts: number };
  readonly idempotency: { readonly updates: number; readonly inserts: number };
  /** false: the commit does not wait for its WAL to reach the disk. */
  readonly durable: boolean;
  /**
   * One audit entry appended too, chained to the log's last entry (see
   * {@link auditChainMoved}); parameters last: seq, entry, the last entry's hash.
   */
  readonly audit?: boolean;
}

/**
 * One compare-and-set write as a single autocommitted statement (one round trip, where a
 * transaction of BEGIN, the version bump, each row, COMMIT takes one each). Parameters, in
 * order: [meta data, expected meta_version] when `meta`; then per principal update (key,
 * expected version, data), per principal insert (key, data), and the same for idempotency.
 * Returns one row (`version`, the new store version) when every row was written; no row when
 * the meta row was not at the expected `meta_version`; and it fails with division by zero
 * (SQLSTATE 22012, {@link WRITE_CONFLICT}) when any other row was not as expected, which rolls
 * the whole statement back.
 *
 * Every row write joins `turn`, the bump of the store's version: the row lock on the meta row
 * is taken before any other row's (the row writes need the new version), so writers are
 * serialised in the same order as in the transaction. A row another writer changed meanwhile
 * is rechecked against its newest version (READ COMMITTED) and fails the compare-and-set.
 */
export function oneStatementWrite(sql: RekeySql, shape: WriteShape): string {
  let next = 1;
  const param = (cast: string) => `$${next++}::${cast}`;
  const turnSet = shape.meta
    ? `, data = ${param("json")}, meta_version = version + 1 WHERE id = 1 AND meta_version = ${param("bigint")}`
    : " WHERE id = 1";
  const parts = [
    `turn AS (UPDATE ${sql.meta} SET version = version + 1, updated_at = now()${turnSet} RETURNING version)`,
  ];
  const tables = [
    [sql.principals, "id", shape.principals],
    [sql.idempotency, "slot", shape.idempotency],
  ] as const;
  for (const [table, key, counts] of tables) {
    for (let i = 0; i < counts.updates; i++) {
      const [id, expected, data] = [param("text"), param("bigint"), param("json")];
      parts.push(`w${parts.length} AS (UPDATE ${table} AS r SET data = ${data}, version = t.version
        FROM turn t WHERE r.${key} = ${id} AND r.version = ${expected} RETURNING 1)`);
    }
    for (let i = 0; i < counts.inserts; i++) {
      const [id, data] = [param("text"), param("json")];
      parts.push(`w${parts.length} AS (INSERT INTO ${table} (${key}, version, data)
        SELECT ${id}, t.version, ${data} FROM turn t
        ON CONFLICT (${key}) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version
        WHERE ${table}.data IS NULL RETURNING 1)`);
    }
  }
  const writes = parts.slice(1).map((_, index) => `(SELECT count(*) FROM w${index + 1})`);
  const written = writes.length === 0 ? "1" : `1 / (${writes.join(" + ")} = ${writes.length})::int`;
  let audited = "";
  if (shape.audit === true) {
    // As appendAuditAfter: only after the entry whose hash is given, and a racing appender
    // that took the seq first makes it insert nothing.
    const [seq, entry, previousHash] = [param("bigint"), param("jsonb"), param("text")];
    parts.push(`audited AS (INSERT INTO ${sql.auditLog} (seq, entry)
        SELECT ${seq}, ${entry} FROM turn t
        WHERE (SELECT entry->>'hash' FROM ${sql.auditLog} ORDER BY seq DESC LIMIT 1) = ${previousHash}
        ON CONFLICT (seq) DO NOTHING RETURNING 1)`);
    // Not a constant (the planner folds those): evaluated only when nothing was inserted.
    audited = `, CASE WHEN (SELECT count(*) FROM audited) = 1 THEN 1
        ELSE ('${AUDIT_CHAIN_MOVED_TEXT}' || (SELECT count(*) FROM audited))::int END AS audited`;
  }
  // set_config(..., true) is SET LOCAL: it holds until this statement's own commit.
  const asynchronous = shape.durable ? "" : `, set_config('synchronous_commit', 'off', true)`;
  return `WITH ${parts.join(",\n")}
    SELECT t.version, ${written} AS written${audited}${asynchronous} FROM turn t`;
}

const AUDIT_CHAIN_MOVED_TEXT = "rekey: the audit log moved on";

/**
 * True for the failure of a one-statement write with an audit entry whose entry was not
 * appended (the log's last entry is not the one expected, or another appender took the seq):
 * the whole statement rolled back, and the caller writes under the audit table's lock instead.
 * (A cast of that text to int: SQLSTATE 22P02 with the text in the message.)
 */
export function auditChainMoved(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error as { code?: unknown }).code === "22P02" &&
    error.message.includes(AUDIT_CHAIN_MOVED_TEXT)
  );
}

/** SQLSTATE of a one-statement write whose compare-and-set failed (see oneStatementWrite). */
export const WRITE_CONFLICT = "22012";

/**
 * The two writes of a table of records: `update` ($1: key, $2: expected version, $3: new
 * version, $4: data, NULL to delete) and `insert` ($1: key, $2: new version, $3: data), which
 * writes no row (a conflict) when a live row already has that key.
 */
function rowWrites(table: string, key: string) {
  return {
    update: `UPDATE ${table} SET data = $4, version = $3 WHERE ${key} = $1 AND version = $2`,
    insert: `INSERT INTO ${table} (${key}, version, data) VALUES ($1, $2, $3)
      ON CONFLICT (${key}) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version
      WHERE ${table}.data IS NULL`,
  };
}

export type RekeySql = ReturnType<typeof sqlFor>;
