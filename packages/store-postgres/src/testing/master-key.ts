/**
 * A fixed master key for tests and benchmarks of PostgreSQL stores, which refuse to open
 * without one. Never for real data: it is published here.
 */
export const TEST_MASTER_KEY_ENV: Readonly<{ REKEY_MASTER_KEY: string }> = Object.freeze({
  REKEY_MASTER_KEY: Buffer.alloc(32, 0x42).toString("base64"),
});
