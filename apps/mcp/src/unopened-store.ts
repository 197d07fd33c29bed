import type { RekeyError } from "@rekey/core";
import type { CredentialStore } from "@rekey/core/store-kit";

/**
 * The store of a session whose real store could not be opened (a PostgreSQL store without its
 * master key, an unreachable database, a bad REKEY_STORE). A host has already seen the
 * handshake by then (the stdio front answers it before anything loads), so exiting would leave
 * the model with "Connection closed" and the reason only in the host's log. Instead every tool
 * call fails with the start-up error, its code and its hint, through the tools' usual error
 * path; nothing is read or written.
 */
export function unopenedStore(error: RekeyError, location: string): CredentialStore {
  const refuse = () => Promise.reject(error);
  return {
    kind: "unopened",
    location,
    read: refuse,
    compareAndSet: refuse,
    lock: refuse,
    appendAudit: refuse,
    readAudit: refuse,
    watch: () => () => {},
    checkWritable: refuse,
    health: refuse,
    close: () => Promise.resolve(),
  };
}
