// A rotation whose store refuses the new key (EROFS) after the journal write: a fault the real
// file store cannot produce at that instant, so the real store is wrapped (the real interface,
// no module mock). Run by kill-points.test.ts with REKEY_TEST_KILL_AT=rescue.written.
import { createFileStore, createRekey, RekeyError } from "@rekey/core";

const [dir, url] = process.argv.slice(2);
const real = createFileStore({ dir, env: {} });
const store = Object.assign(Object.create(real), {
  compareAndSet(version, data, options) {
    // The write that stores the key drops the journal's reserve.
    const storing = Object.values(data.principals).some(
      (record) => record.intent !== undefined && record.intent.reserve === undefined,
    );
    if (storing) {
      return Promise.reject(new RekeyError("STORE_UNAVAILABLE", "EROFS: read-only file system"));
    }
    return real.compareAndSet(version, data, options);
  },
  prepareAudit: () => real.prepareAudit(),
});
const rekey = createRekey({ store, surface: "cli", baseUrl: url, env: process.env });
await rekey.rotateKey({ force: true });
