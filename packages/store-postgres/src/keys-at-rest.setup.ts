import { installKeysAtRestScan, installSealedKeyEquality } from "@rekey/core/testing";

// Every temp dir a test of this suite removes is scanned first: no store file (credentials,
// audit log, backups), whoever wrote it (the library, a CLI or server child process), may hold
// a raw key. PostgreSQL schemas are scanned when dropped (`dropPostgresSchema`).
installKeysAtRestScan();

// Reads leave keys sealed (`SealedKey`): tests compare them by what they open to.
installSealedKeyEquality();
