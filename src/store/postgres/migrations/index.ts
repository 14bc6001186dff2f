import { sql as init } from './001-init.js';
import { sql as server } from './002-server.js';
import { sql as datasets } from './003-datasets.js';
import { sql as attributeValues } from './004-attribute-values.js';
import { sql as evals } from './005-evals.js';
import { sql as concurrencyKeys } from './006-concurrency-keys.js';
import { sql as cacheExplain } from './008-cache-explain.js';
import { sql as artifacts } from './011-artifacts.js';
import { sql as audit } from './009-audit.js';
import { sql as runsList } from './010-runs-list.js';
import { sql as runTraces } from './012-run-traces.js';
import { sql as retention } from './013-retention.js';
import { sql as flowControl } from './015-flow-control.js';
import { sql as waits } from './016-waits.js';
import { sql as statsRollup } from './017-stats-rollup.js';
import { sql as leanAttempts } from './018-lean-attempts.js';
import { sql as packedEvents } from './019-packed-events.js';
import { sql as stepAttempts } from './020-step-attempts.js';

/** Numbered, append-only migrations of the PostgreSQL backend. */
export const migrations: ReadonlyArray<{ id: number; name: string; sql: string }> = [
  { id: 1, name: 'init', sql: init },
  { id: 2, name: 'server', sql: server },
  { id: 3, name: 'datasets', sql: datasets },
  { id: 4, name: 'attribute-values', sql: attributeValues },
  { id: 5, name: 'evals', sql: evals },
  { id: 6, name: 'concurrency-keys', sql: concurrencyKeys },
  { id: 8, name: 'cache-explain', sql: cacheExplain },
  // 7 is SQLite's packed events; PostgreSQL's are 19.
  { id: 9, name: 'audit', sql: audit },
  { id: 10, name: 'runs-list', sql: runsList },
  { id: 11, name: 'artifacts', sql: artifacts },
  { id: 12, name: 'run-traces', sql: runTraces },
  { id: 13, name: 'retention', sql: retention },
  { id: 15, name: 'flow-control', sql: flowControl },
  { id: 16, name: 'waits', sql: waits },
  { id: 17, name: 'stats-rollup', sql: statsRollup },
  { id: 18, name: 'lean-attempts', sql: leanAttempts },
  { id: 19, name: 'packed-events', sql: packedEvents },
  { id: 20, name: 'step-attempts', sql: stepAttempts },
];
