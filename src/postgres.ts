/**
 * `sluice/postgres`: the PostgreSQL store and artifact store, for programs that construct them directly. They
 * need the `pg` package (an optional peer dependency: `npm install pg`). `openStore('postgres://...')` from
 * `sluice` loads them on demand, so most programs never import this module.
 */
export { PostgresStore, type PostgresStoreOptions } from './store/postgres/postgres-store.js';
export { PostgresArtifactStore, type PostgresArtifactStoreOptions } from './artifacts/postgres-artifact-store.js';
