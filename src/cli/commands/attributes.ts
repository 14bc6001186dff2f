import { resolve } from 'node:path';
import { attributeTriggersOf } from '../../attributes/extension.js';
import type { AttributeRunStats } from '../../attributes/attribute-step.js';
import { absorbTriggeredRuns, runDatasetPipelines } from '../../attributes/dataset-runs.js';
import { attributeWarnings } from '../../attributes/warnings.js';
import { SluiceError, errorMessage } from '../../core/errors.js';
import { loadPipelineFile, type LoadedPipeline } from '../../core/load-pipeline.js';
import { requireDataset } from '../../datasets/datasets.js';
import type { Engine } from '../../engine/engine.js';
import { formatEvalSummary } from '../../evals/eval-views.js';
import { evalsAfterRun } from '../../evals/evals-after-run.js';
import type { EvalSummary } from '../../store/evals.js';
import type { RunRecord } from '../../store/store.js';
import type { AttributeValue } from '../../store/attributes.js';
import { builtinStepTypes } from '../../steps/builtin.js';
import { formatDuration, formatTime, openEngine, printJson, table, type GlobalOptions } from '../context.js';
import { attributeValueView } from '../../server/views.js';

async function withEngine<T>(opts: GlobalOptions, fn: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = await openEngine(opts);
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

/**
 * `sluice dataset run NAME [FILE...] [--force]`: registers the pipeline files given (all validated before the
 * store is touched), then runs every attribute pipeline of the dataset in Kahn's order in this process, each
 * after the one whose field it reads. Prints each run's counts; exit 0 only when every run succeeded.
 */
export async function datasetRunCommand(name: string, files: string[], opts: GlobalOptions & { force?: boolean }): Promise<number> {
  const loaded: LoadedPipeline[] = [];
  for (const file of files) loaded.push(await loadPipelineFile(resolve(file), builtinStepTypes()));
  return withEngine(opts, async (engine) => {
    await requireDataset(engine, name);
    for (const l of loaded) {
      if (l.pipeline.attribute?.dataset !== name) throw new SluiceError('VALIDATION_FAILED', `${l.file}: pipeline ${l.pipeline.name} is not an attribute pipeline of dataset ${name}`);
      await engine.registerPipeline(l.pipeline, { text: l.source, file: l.file });
    }
    for (const l of loaded) for (const w of await attributeWarnings(engine.store, l.pipeline)) process.stderr.write(`warning: ${l.file}: ${w}\n`);
    // Before this process's worker could start them: the runs an import queued are covered by this dataset run.
    await absorbTriggeredRuns(engine, name);
    engine.startWorker({ concurrency: 2 });
    const runs = await runDatasetPipelines(engine, name, {
      force: opts.force === true,
      onStart: (pipeline, runId) => {
        if (!opts.json) process.stdout.write(`${pipeline}: run ${runId} started\n`);
      },
    });
    if (runs.length === 0) throw new SluiceError('PIPELINE_NOT_FOUND', `dataset ${name} has no attribute pipeline: register one (sluice dataset run ${name} FILE.yaml)`);
    const rows = [];
    for (const run of runs) rows.push({ run, stats: await runStats(engine, run.id), evals: await evalsAfter(engine, run) });
    if (opts.json) {
      printJson(rows.map(({ run, stats, evals }) => ({ pipeline: run.pipeline, run: run.id, status: run.status, ...stats, ...(evals ? { evals: { passed: evals.passed, failed: evals.failed, not_run: evals.notRun, total: evals.total } } : {}) })));
    } else {
      const cells = rows.map(({ run, stats }) => [
        run.pipeline,
        run.status,
        String(stats?.processed ?? '-'),
        String(stats?.failed ?? '-'),
        String(stats?.skipped ?? '-'),
        stats ? `${stats.tokens_in}/${stats.tokens_out}` : '-',
        formatDuration(stats?.duration_ms ?? null),
      ]);
      process.stdout.write(`${table(['PIPELINE', 'STATUS', 'PROCESSED', 'FAILED', 'SKIPPED', 'TOKENS IN/OUT', 'DURATION'], cells)}\n`);
      for (const { run, evals } of rows) if (evals) process.stdout.write(`${formatEvalSummary(run.pipeline, evals)}\n`);
      const failed = runs.find((r) => r.status !== 'succeeded');
      if (failed) process.stdout.write(`${failed.pipeline} ${failed.status}: ${(await stepError(engine, failed.id)) ?? failed.error?.message ?? ''}\n`);
    }
    return runs.every((r) => r.status === 'succeeded') ? 0 : 1;
  });
}

/**
 * The evals of a pipeline whose run succeeded, run again (as after `sluice run`); undefined when it has no
 * cases or its run failed. An eval pass that fails is reported on stderr and does not change the exit code.
 */
async function evalsAfter(engine: Engine, run: RunRecord): Promise<EvalSummary | undefined> {
  if (run.status !== 'succeeded') return undefined;
  try {
    return (await evalsAfterRun(engine, run.pipeline))?.summary;
  } catch (err) {
    process.stderr.write(`sluice: evals of ${run.pipeline} failed: ${errorMessage(err)}\n`);
    return undefined;
  }
}

async function runStats(engine: Engine, runId: string): Promise<AttributeRunStats | undefined> {
  const output = (await engine.store.getStepOutputs(runId, ['attribute']))['attribute'] as AttributeRunStats | undefined;
  if (output) return output;
  const [step] = await engine.store.listSteps(runId);
  return (step?.error as { details?: { stats?: AttributeRunStats } } | null)?.details?.stats;
}

async function stepError(engine: Engine, runId: string): Promise<string | undefined> {
  const [step] = await engine.store.listSteps(runId);
  return step?.error?.message;
}

/** `sluice dataset override NAME ID FIELD VALUE [--note TEXT]`: sets a derived value by hand; no run replaces it. */
export async function datasetOverrideCommand(name: string, id: string, field: string, value: string, opts: GlobalOptions & { note?: string }): Promise<number> {
  const parsed = parseValue(value);
  return withEngine(opts, async (engine) => {
    await requireDataset(engine, name);
    const stored = await engine.store.overrideAttributeValue(name, id, field, { value: parsed, note: opts.note }, engine.clock.now());
    await attributeTriggersOf(engine)?.valuesChanged(name, field, [id]);
    if (opts.json) printJson(attributeValueView(stored));
    else process.stdout.write(`${name}/${id}.${field} = ${JSON.stringify(stored.value)} (overridden)\n`);
    return 0;
  });
}

/** `sluice dataset approve NAME ID FIELD`: marks a proposed value approved. */
export async function datasetApproveCommand(name: string, id: string, field: string, opts: GlobalOptions & { note?: string }): Promise<number> {
  return withEngine(opts, async (engine) => {
    await requireDataset(engine, name);
    const stored = await engine.store.approveAttributeValue(name, id, field, opts.note, engine.clock.now());
    if (opts.json) printJson(attributeValueView(stored));
    else process.stdout.write(`${name}/${id}.${field} = ${JSON.stringify(stored.value)} (${stored.status})\n`);
    return 0;
  });
}

/** A value on the command line: JSON when it parses (42, true, "x", {"a":1}), else the text itself. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The derived values of a record as a table: field, value, confidence, status, who made it, when. */
export function valuesTable(values: Record<string, AttributeValue>): string {
  const rows = Object.entries(values).map(([field, v]) => [
    field,
    clip(JSON.stringify(v.value), 40),
    v.confidence === null ? '-' : v.confidence.toFixed(2),
    v.status,
    v.pipeline ? `${v.pipeline} v${v.pipelineVersion ?? '?'}` : '-',
    formatTime(v.updatedAt),
    clip(v.justification ?? v.note ?? '', 50),
  ]);
  return table(['FIELD', 'VALUE', 'CONFIDENCE', 'STATUS', 'PIPELINE', 'UPDATED', 'JUSTIFICATION'], rows);
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}
