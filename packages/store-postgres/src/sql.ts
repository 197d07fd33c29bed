/**
 * The SQL of one rekey schema. The schema name has been checked to be a plain identifier
 * (see `parsePostgresUrl`), so it is safe to write into statement text; values always travel
 * as parameters.
 */
export function sqlFor(schema: string) {
  const credentials = `"${schema}".credentials`;
  const auditLog = `"${schema}".audit_log`;
  // One channel per schema: several rekey schemas can share a database.
  const channel = `${schema}.credentials`;
  return {
    credentials,
    auditLog,
    channel,
    /** Advisory lock keys are (namespace, name) pairs of int4 hashes; rekey's namespace. */
    lockNamespace: `rekey:${schema}`,

    /** Whether every object `setUp` makes exists (checked first, so a user without CREATE
     * rights can use tables an owner made). */
    isSetUp: `SELECT to_regclass('${credentials}') IS NOT NULL
        AND to_regclass('${auditLog}') IS NOT NULL
        AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('${credentials}')
                      AND tgname = 'notify_credentials_change') AS ready`,

    /** Idempotent; run under an advisory lock so that two first users do not race. */
    setUp: [
      `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
      // The whole store is one versioned JSON document (core's StoreData), in one row. `json`,
      // not `jsonb`: it keeps the text as written, key order included, so a stored HTTP reply
      // is replayed byte for byte.
      `CREATE TABLE IF NOT EXISTS ${credentials} (
        id smallint PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL CHECK (version > 0),
        data json NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE IF NOT EXISTS ${auditLog} (
        seq bigint PRIMARY KEY CHECK (seq > 0),
        entry jsonb NOT NULL,
        appended_at timestamptz NOT NULL DEFAULT now()
      )`,
      // Every write, by any client, tells the watchers of this schema the new version.
      `CREATE OR REPLACE FUNCTION "${schema}".notify_credentials_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify(TG_TABLE_SCHEMA || '.credentials', NEW.version::text);
          RETURN NULL;
        END
        $$`,
      `DROP TRIGGER IF EXISTS notify_credentials_change ON ${credentials}`,
      `CREATE TRIGGER notify_credentials_change AFTER INSERT OR UPDATE ON ${credentials}
        FOR EACH ROW EXECUTE FUNCTION "${schema}".notify_credentials_change()`,
    ],

    /** $1: the version the caller already holds; its data is not sent again. */
    read: `SELECT version, CASE WHEN version = $1 THEN NULL ELSE data END AS data
      FROM ${credentials} WHERE id = 1`,
    version: `SELECT coalesce((SELECT version FROM ${credentials} WHERE id = 1), 0) AS version`,
    /** $1: data. Only when nothing was ever written (version 0). */
    insertFirst: `INSERT INTO ${credentials} (id, version, data) VALUES (1, 1, $1)
      ON CONFLICT (id) DO NOTHING RETURNING version`,
    /** $1: expected version, $2: data. */
    compareAndSet: `UPDATE ${credentials} SET version = version + 1, data = $2, updated_at = now()
      WHERE id = 1 AND version = $1 RETURNING version`,

    /** Serialises appenders; readers are not blocked. */
    lockAuditLog: `LOCK TABLE ${auditLog} IN SHARE ROW EXCLUSIVE MODE`,
    lastAuditEntry: `SELECT entry FROM ${auditLog} ORDER BY seq DESC LIMIT 1`,
    appendAudit: `INSERT INTO ${auditLog} (seq, entry) VALUES ($1, $2)`,
    readAudit: `SELECT entry FROM ${auditLog} ORDER BY seq`,

    /** Write probes that change nothing: they fail as a real write would (privileges, standby). */
    probeWrites: [
      `UPDATE ${credentials} SET version = version WHERE false`,
      `INSERT INTO ${auditLog} (seq, entry) SELECT 1, '{}'::jsonb WHERE false`,
    ],
  };
}

export type RekeySql = ReturnType<typeof sqlFor>;
