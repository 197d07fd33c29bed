/**
 * `@rekey/core/store-kit`: what a credential store implementation needs and an application does
 * not (packages/store-postgres is one): the store document's schemas and migrations, the audit
 * chain, key sealing, frozen snapshots, record ids. Apps use `@rekey/core`.
 */
export type { UrlStoreOpener } from "./engine/open-store.js";
export * from "./store/index.js";
export * from "./store/types.js";
