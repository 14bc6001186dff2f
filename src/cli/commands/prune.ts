import { openEngine, type GlobalOptions } from '../context.js';
import { parseRetention, type PruneReport } from '../../engine/retention.js';

export interface PruneCommandOptions extends GlobalOptions {
  olderThan?: string;
  pipeline?: string;
  dryRun?: boolean;
  deadLetters?: boolean;
}

/**
 * `sluice prune`: removes finished runs older than each pipeline's `retention` (else `SLUICE_RETENTION`;
 * `--older-than` overrides both), with everything they own and the artifacts only they named, and prints what
 * it removed (or, with `--dry-run`, would remove). Failed runs (dead letters) only with `--dead-letters`.
 */
export async function pruneCommand(opts: PruneCommandOptions): Promise<number> {
  const olderThanMs = parseRetention(opts.olderThan, '--older-than');
  const engine = await openEngine(opts);
  try {
    const report = await engine.prune({ olderThanMs, pipeline: opts.pipeline, dryRun: opts.dryRun === true, deadLetters: opts.deadLetters === true });
    process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return 0;
  } finally {
    await engine.close();
  }
}

/** One line per pipeline pruned, then the rows and artifacts in total. */
export function formatReport(r: PruneReport): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  if (r.pipelines.length === 0) return 'nothing to prune: no pipeline has a retention (set retention: in a pipeline, SLUICE_RETENTION, or pass --older-than)\n';
  const lines = r.pipelines.map((p) => `${p.pipeline}: ${verb} ${p.runs} run${p.runs === 1 ? '' : 's'} finished more than ${days(p.olderThanMs)} ago`);
  const rows = Object.entries(r.rows)
    .filter(([t, n]) => n > 0 && t !== 'runs')
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');
  lines.push(`total: ${verb} ${r.runs} run${r.runs === 1 ? '' : 's'}${rows ? ` (${rows})` : ''} and ${r.artifacts.length} artifact${r.artifacts.length === 1 ? '' : 's'}`);
  if (r.reclaimedBytes !== undefined) lines.push(`the database file gave back ${r.reclaimedBytes} bytes`);
  return `${lines.join('\n')}\n`;
}

function days(ms: number): string {
  return ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${ms}ms`;
}
