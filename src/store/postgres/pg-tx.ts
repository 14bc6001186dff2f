import type pg from 'pg';
import { SluiceError } from '../../core/errors.js';
import type { Pipeline } from '../../core/model.js';
import { compilePipeline, type CompiledPipeline } from '../ledger/ledger-tx.js';
import { endChild } from '../ledger/outcomes.js';
import type { PipelineRow } from '../rows.js';
import type { Tx } from './pg-attempts.js';
import { PgRunTransitions } from './pg-run-transitions.js';
import { sql } from './pg-store-sql.js';

/** Opens the run transitions of transactions, with the stored pipelines they need compiled once per store. */
export class TxOpener {
  private readonly compiledCache = new Map<string, CompiledPipeline>();

  /** The transaction state of `client`: ledger rules, buffered events, and the ends of child runs. */
  open(client: pg.PoolClient): Tx {
    const tx: Tx = { client, t: new PgRunTransitions(client, (name, version) => this.compiled(client, name, version)), wake: false };
    tx.t.onRunEnded = (out, runId, status, at) => tx.t.run(endChild(tx.t, runId, status, at, out));
    return tx;
  }

  private async compiled(client: pg.ClientBase, name: string, version: number): Promise<CompiledPipeline> {
    const key = `${name}@${version}`;
    let c = this.compiledCache.get(key);
    if (!c) {
      const [row] = await sql<PipelineRow>(client, 'pipeline', [name, version]);
      if (!row) throw new SluiceError('PIPELINE_NOT_FOUND', `pipeline ${name} version ${version} is not stored`);
      c = compilePipeline(JSON.parse(row.definition) as Pipeline);
      this.compiledCache.set(key, c);
    }
    return c;
  }
}
