import { sql as init } from './001-init.js';
import { sql as server } from './002-server.js';
import { sql as datasets } from './003-datasets.js';
import { sql as attributeValues } from './004-attribute-values.js';
import { sql as evals } from './005-evals.js';
import { sql as concurrencyKeys } from './006-concurrency-keys.js';
import { sql as packedEvents } from './007-packed-events.js';
import { sql as cacheExplain } from './008-cache-explain.js';
import { sql as audit } from './009-audit.js';
import { sql as runsList } from './010-runs-list.js';
import { sql as runTraces } from './011-run-traces.js';
import { sql as retention } from './012-retention.js';
import { sql as flowControl } from './014-flow-control.js';
import { sql as waits } from './015-waits.js';
import { sql as statsRollup } from './016-stats-rollup.js';
import { sql as leanAttempts } from './017-lean-attempts.js';
import { sql as stepAttempts } from './018-step-attempts.js';

/** Numbered, append-only migrations of the SQLite backend. */
export const migrations: ReadonlyArray<{ id: number; name: string; sql: string }> = [
  { id: 1, name: 'init', sql: init },
  { id: 2, name: 'server', sql: server },
  { id: 3, name: 'datasets', sql: datasets },
  { id: 4, name: 'attribute-values', sql: attributeValues },
  { id: 5, name: 'evals', sql: evals },
  { id: 6, name: 'concurrency-keys', sql: concurrencyKeys },
  { id: 7, name: 'packed-events', sql: packedEvents },
  { id: 8, name: 'cache-explain', sql: cacheExplain },
  { id: 9, name: 'audit', sql: audit },
  { id: 10, name: 'runs-list', sql: runsList },
  { id: 11, name: 'run-traces', sql: runTraces },
  { id: 12, name: 'retention', sql: retention },
  { id: 14, name: 'flow-control', sql: flowControl },
  { id: 15, name: 'waits', sql: waits },
  { id: 16, name: 'stats-rollup', sql: statsRollup },
  { id: 17, name: 'lean-attempts', sql: leanAttempts },
  { id: 18, name: 'step-attempts', sql: stepAttempts },
];
