import { loadTypedTarget, normalizedLoaded } from '../../define/load-pipelines.js';
import { SluiceError } from '../../core/errors.js';
import { renderGraph, writtenSteps } from '../../core/graph.js';
import { loadPipelineFile } from '../../core/load-pipeline.js';
import { builtinStepTypes } from '../../steps/builtin.js';
import { listRunPage } from '../../store/run-cursor.js';
import type { AttemptRecord, GateDecisionRecord, Pipeline, RunRecord, RunStatus } from '../../index.js';
import { definitionView } from '../../server/contract-views.js';
import { logView, runView } from '../../server/views.js';
import { runJson } from '../json-views.js';
import type { Engine } from '../../engine/engine.js';
import { isHeldRunAt } from '../../store/flow/flow-start.js';
import { formatDuration, formatTime, looksLikeFile, openEngine, printJson, table, type GlobalOptions } from '../context.js';

/** What a waiting step waits for and until when, as `sluice status` prints it. */
export function waitLine(step: string, output: unknown): string {
  const w = (output ?? {}) as { waiting_for?: string; event?: string; match?: string; until?: string };
  const what = w.waiting_for === 'event' ? `event ${w.event ?? '?'}${w.match ? ` matching ${w.match}` : ''}` : 'its time';
  return `${step} waits for ${what}${w.until ? ` until ${w.until}` : ''}`;
}

/** `sluice status [RUN]`: a run and its steps (the newest run when none is named). */
export async function statusCommand(runId: string | undefined, opts: GlobalOptions): Promise<number> {
  const engine = await openEngine(opts);
  try {
    const run = runId ? await engine.requireRun(runId) : (await engine.store.listRuns({ limit: 1 }))[0];
    if (!run) {
      if (opts.json) printJson(null);
      else process.stdout.write('no runs yet\n');
      return 0;
    }
    if (opts.json) {
      printJson(await runJson(engine, run, { decisions: true }));
      return 0;
    }
    const [steps, decisions] = await Promise.all([engine.store.listSteps(run.id), engine.store.listDecisions(run.id)]);
    process.stdout.write(`run ${run.id}  ${run.pipeline} v${run.version}  ${run.status}\n`);
    process.stdout.write(`created ${formatTime(run.createdAt)}  started ${formatTime(run.startedAt)}  finished ${formatTime(run.finishedAt)}\n`);
    const held = await heldAfter(engine, run);
    if (held) process.stdout.write(`waits for run ${held} to end (singleton queue); no start time until then\n`);
    if (run.error) process.stdout.write(`error: ${run.error.message}\n`);
    const usage = sumUsage(await engine.store.listAttempts(run.id));
    if (usage) process.stdout.write(`usage: ${usage}\n`);
    const rows = steps.map((s) => [
      s.name,
      s.status,
      String(s.attempts),
      s.startedAt !== null && s.finishedAt !== null ? formatDuration(s.finishedAt - s.startedAt) : '-',
      s.error ? `${s.error.code}: ${s.error.message.split('\n')[0]}` : '',
    ]);
    process.stdout.write(`\n${table(['STEP', 'STATUS', 'ATTEMPTS', 'DURATION', 'ERROR'], rows)}\n`);
    for (const s of steps.filter((st) => st.status === 'waiting')) process.stdout.write(`\n${waitLine(s.name, s.output)}\n`);
    for (const s of steps.filter((st) => st.error && st.status === 'failed')) {
      process.stdout.write(`\n${s.name} failed: ${s.error!.code}\n${indent(s.error!.message)}\n`);
    }
    if (decisions.length > 0) process.stdout.write(`\ndecisions:\n${table(['AT', 'STEP', 'KIND', 'DECISION', 'BY', 'WHY', 'RULES'], decisions.map(decisionRow))}\n`);
    return 0;
  } finally {
    await engine.close();
  }
}

/** One row of the decisions table of `sluice status`: a gate's verdict with its failed rules, or a person's. */
function decisionRow(d: GateDecisionRecord): string[] {
  const rules = d.rules as Array<{ name?: string; passed?: boolean }>;
  const failed = rules.filter((r) => r.passed === false).map((r) => r.name);
  const checked = d.kind === 'gate' ? `${rules.length - failed.length}/${rules.length} passed${failed.length > 0 ? ` (failed: ${failed.join(', ')})` : ''}` : '';
  const why = d.kind === 'human' ? (d.comment ?? '') : [d.reason, d.retryStep ? `retry ${d.retryStep}` : undefined].filter(Boolean).join('; ');
  return [formatTime(d.at), d.step, d.kind, d.decision, d.by ?? '', why, checked];
}

/** Tokens and cost over every attempt of a run, or null when no step reported any. */
function sumUsage(attempts: AttemptRecord[]): string | null {
  const used = attempts.filter((a) => a.usage);
  if (used.length === 0) return null;
  const tokensIn = used.reduce((n, a) => n + (a.usage?.tokensIn ?? 0), 0);
  const tokensOut = used.reduce((n, a) => n + (a.usage?.tokensOut ?? 0), 0);
  const cost = used.reduce((n, a) => n + (a.usage?.cost ?? 0), 0);
  return `${tokensIn} tokens in, ${tokensOut} tokens out, cost ${cost.toFixed(4)}`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/**
 * `sluice runs`: recent runs, newest first, `--limit` at a time (default 20). When there are more, the command
 * for the next page (`--cursor C`) goes to stderr, so `--json` output stays one JSON array.
 */
export async function runsCommand(opts: GlobalOptions & { pipeline?: string; status?: string; limit?: string; cursor?: string }): Promise<number> {
  const limit = opts.limit === undefined ? 20 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new SluiceError('INPUT_INVALID', `--limit must be a whole number from 1 to 1000, got ${JSON.stringify(opts.limit)}`);
  }
  const engine = await openEngine(opts);
  try {
    const page = await listRunPage(engine.store, {
      ...(opts.pipeline ? { pipeline: opts.pipeline } : {}),
      ...(opts.status ? { status: opts.status as RunStatus } : {}),
      limit,
      cursor: opts.cursor,
    });
    printRuns(page.runs, opts, false, await heldRuns(engine, page.runs));
    if (page.nextCursor) process.stderr.write(`more runs: sluice runs${nextPageArgs(opts)} --cursor ${page.nextCursor}\n`);
    return 0;
  } finally {
    await engine.close();
  }
}

/** `sluice dlq`: runs that failed for good (dead letters); re-drive one with `sluice retry RUN`. */
export async function dlqCommand(opts: GlobalOptions & { limit?: string }): Promise<number> {
  const engine = await openEngine(opts);
  try {
    printRuns(await engine.store.listDeadLetters(opts.limit ? Number(opts.limit) : 50), opts, true);
    return 0;
  } finally {
    await engine.close();
  }
}

/** The filters of this listing, as options to repeat for its next page. */
function nextPageArgs(opts: { pipeline?: string; status?: string; limit?: string }): string {
  return [opts.pipeline && ` --pipeline ${opts.pipeline}`, opts.status && ` --status ${opts.status}`, opts.limit && ` --limit ${opts.limit}`].filter(Boolean).join('');
}

/** The run a run held by a singleton queue waits for, or undefined when it is not held. */
async function heldAfter(engine: Engine, run: RunRecord): Promise<string | undefined> {
  if (run.status !== 'queued' || !isHeldRunAt(run.runAt)) return undefined;
  return (await engine.store.runFlow(run.id))?.afterRunId ?? undefined;
}

/** The runs of `runs` that a singleton queue holds, with the run each waits for (looked up for those only). */
async function heldRuns(engine: Engine, runs: RunRecord[]): Promise<Map<string, string>> {
  const held = new Map<string, string>();
  for (const r of runs) {
    const after = await heldAfter(engine, r);
    if (after) held.set(r.id, after);
  }
  return held;
}

/**
 * Prints runs as a table; `withError` adds the run's error (first line), as dead letters need. A run in `held`
 * shows the run it waits for next to its status.
 */
function printRuns(runs: RunRecord[], opts: GlobalOptions, withError = false, held = new Map<string, string>()): void {
  if (opts.json) return printJson(runs.map(runView));
  const rows = runs.map((r) => [
    r.id,
    `${r.pipeline} v${r.version}`,
    held.has(r.id) ? `${r.status} (after ${held.get(r.id)})` : r.status,
    formatTime(r.createdAt),
    r.finishedAt !== null && r.startedAt !== null ? formatDuration(r.finishedAt - r.startedAt) : '-',
    ...(withError ? [r.error ? r.error.message.split('\n')[0]! : ''] : []),
  ]);
  const headers = ['RUN', 'PIPELINE', 'STATUS', 'CREATED', 'DURATION', ...(withError ? ['ERROR'] : [])];
  process.stdout.write(`${table(headers, rows)}\n`);
}

/** `sluice logs RUN [STEP]`. */
export async function logsCommand(runId: string, step: string | undefined, opts: GlobalOptions): Promise<number> {
  const engine = await openEngine(opts);
  try {
    await engine.requireRun(runId);
    const lines = await engine.store.listLogs(runId, step);
    if (opts.json) printJson(lines.map(logView));
    else for (const l of lines) process.stdout.write(`${l.step}#${l.attempt} ${l.stream === 'stdout' ? '' : `[${l.stream}] `}${l.line}\n`);
    return 0;
  } finally {
    await engine.close();
  }
}

/** `sluice validate FILE`: exit 0 when valid; every problem printed with file:line:column and key path. */
export async function validateCommand(file: string, opts: GlobalOptions): Promise<number> {
  // A pipeline defined in code (FILE.ts#NAME, or a module exporting one) validates as its YAML form does.
  const typed = await loadTypedTarget(file);
  const loaded = typed ? { pipeline: normalizedLoaded(typed, builtinStepTypes()) } : await loadPipelineFile(file, builtinStepTypes());
  if (opts.json) printJson({ valid: true, pipeline: definitionView(loaded.pipeline) });
  else process.stdout.write(`${file}: pipeline ${loaded.pipeline.name} is valid (${writtenSteps(loaded.pipeline).steps.length} steps${loaded.pipeline.attribute ? `, writes ${loaded.pipeline.attribute.target} of dataset ${loaded.pipeline.attribute.dataset}` : ''})\n`);
  return 0;
}

/** `sluice graph FILE|NAME`: the DAG as ascii, mermaid or dot. */
export async function graphCommand(target: string, opts: GlobalOptions & { format?: string; run?: string }): Promise<number> {
  const format = (opts.format ?? 'ascii') as 'ascii' | 'mermaid' | 'dot';
  if (!['ascii', 'mermaid', 'dot'].includes(format)) throw new SluiceError('VALIDATION_FAILED', `--format must be ascii, mermaid or dot, got ${format}`);
  const typed = await loadTypedTarget(target);
  if (typed || looksLikeFile(target)) {
    const loaded = typed ? { pipeline: normalizedLoaded(typed, builtinStepTypes()) } : await loadPipelineFile(target, builtinStepTypes());
    printGraph(loaded.pipeline, format, opts);
    return 0;
  }
  const engine = await openEngine(opts);
  try {
    const p = await engine.requirePipeline(target);
    printGraph(p.definition, format, opts);
    return 0;
  } finally {
    await engine.close();
  }
}

function printGraph(definition: Pipeline, format: 'ascii' | 'mermaid' | 'dot', opts: GlobalOptions): void {
  const p = writtenSteps(definition);
  const text = renderGraph(p, format);
  if (!opts.json) {
    process.stdout.write(`${text}\n`);
    return;
  }
  const edges = p.steps.flatMap((s) => s.needs.map((n) => ({ from: n, to: s.name })));
  printJson({ pipeline: p.name, nodes: p.steps.map((s) => ({ name: s.name, uses: s.uses })), edges, format, text });
}
