import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isSluiceError, SluiceError } from '../../core/errors.js';
import type { Engine } from '../../engine/engine.js';
import { setEvals } from '../../evals/evals.js';
import { evalCaseFromJson, evalReportView, formatEvalSummary } from '../../evals/eval-views.js';
import { loadEvalReport, runEvals, type EvalReport } from '../../evals/run-evals.js';
import type { EvalCase, NewEvalCase } from '../../store/evals.js';
import { openEngine, printJson, table, type GlobalOptions } from '../context.js';

export interface EvalOptions extends GlobalOptions {
  /** False with --no-run: only list the stored results. */
  run?: boolean;
  /** --set FILE: replace the cases from a YAML, JSON or JSONL file first. */
  set?: string;
}

/** Longest JSON shown in a table cell before it is cut. */
const CELL = 40;

/**
 * `sluice eval NAME [--set FILE] [--no-run]`: (replaces the cases from FILE, then) runs the pipeline's evals and
 * prints each case and a summary. Exit 1 when a case failed, 2 on invalid input (unknown pipeline, bad file).
 */
export async function evalCommand(name: string, opts: EvalOptions): Promise<number> {
  // The file is read and parsed before the store is opened: a bad file touches nothing.
  const file = opts.set === undefined ? undefined : readEvalFile(opts.set);
  const engine = await openEngine(opts);
  try {
    if (!(await engine.store.getPipeline(name))) return refuse(new SluiceError('PIPELINE_NOT_FOUND', `no pipeline named ${name}`), opts);
    if (file) await replaceFromFile(engine, name, file);
    const report = opts.run === false ? await loadEvalReport(engine, name) : await runEvals(engine, name);
    printReport(report, opts);
    return report.summary.failed > 0 ? 1 : 0;
  } finally {
    await engine.close();
  }
}

interface EvalFile {
  path: string;
  cases: NewEvalCase[];
  /** Line of each case (JSONL), for messages. */
  lines?: number[];
}

/** Reads `--set FILE`: a YAML or JSON list of cases (or `{evals: [...]}`), or JSONL with one case per line. */
export function readEvalFile(path: string): EvalFile {
  const ext = extname(path).toLowerCase();
  if (!['.yaml', '.yml', '.json', '.jsonl'].includes(ext)) throw invalid(path, 'eval cases must be a .yaml, .yml, .json or .jsonl file');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw invalid(path, `cannot read the file: ${(err as Error).message}`);
  }
  if (ext === '.jsonl') return readJsonl(path, text);
  let doc: unknown;
  try {
    doc = ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw invalid(path, `not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  const list = isObject(doc) && Array.isArray(doc['evals']) ? doc['evals'] : doc;
  if (!Array.isArray(list)) throw invalid(path, 'expected a list of eval cases (or an object with an `evals` list)');
  return { path, cases: list.map((c, i) => withFile(path, () => evalCaseFromJson(c, `eval case ${i}`))) };
}

function readJsonl(path: string, text: string): EvalFile {
  const cases: NewEvalCase[] = [];
  const lines: number[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const label = `eval case ${cases.length} (line ${i + 1})`;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw invalid(path, `${label}: not valid JSON: ${(err as Error).message}`);
    }
    cases.push(withFile(path, () => evalCaseFromJson(value, label)));
    lines.push(i + 1);
  });
  return { path, cases, lines };
}

async function replaceFromFile(engine: Engine, name: string, file: EvalFile): Promise<void> {
  try {
    await setEvals(engine, name, file.cases);
  } catch (err) {
    if (!isSluiceError(err) || err.code !== 'VALIDATION_FAILED') throw err;
    // Name the file, and for JSONL the line of the case.
    const message = err.message.replace(/^eval case (\d+)/, (m, i: string) => (file.lines?.[Number(i)] === undefined ? m : `${m} (line ${file.lines[Number(i)]})`));
    throw new SluiceError('VALIDATION_FAILED', `${file.path}: ${message}`, { details: err.details });
  }
}

function printReport(report: EvalReport, opts: EvalOptions): void {
  if (opts.json) {
    printJson(evalReportView(report));
    return;
  }
  if (report.evals.length === 0) {
    process.stdout.write(`pipeline ${report.pipeline} has no eval cases (add them with sluice eval ${report.pipeline} --set FILE)\n`);
    return;
  }
  const headers = ['CASE', 'RECORD/INPUT', 'DESIRED', 'ACTUAL', 'COMPARATOR', 'RESULT', 'CONFIDENCE', 'NOTES'];
  process.stdout.write(`${table(headers, report.evals.map(caseRow))}\n${formatEvalSummary(report.pipeline, report.summary)}\n`);
}

function caseRow(c: EvalCase): string[] {
  const ran = c.lastRanAt !== null;
  return [
    String(c.id),
    c.recordId !== null ? `record ${cut(c.recordId)}` : cut(JSON.stringify(c.input)),
    cut(JSON.stringify(c.desiredOutput) ?? 'null'),
    !ran ? '-' : c.error ? cut(`error: ${c.error.message}`) : cut(JSON.stringify(c.actualOutput) ?? 'null'),
    c.comparator,
    c.passed === null ? 'NOT RUN' : c.passed ? 'PASS' : 'FAIL',
    c.confidence === null ? '-' : String(Math.round(c.confidence * 100) / 100),
    c.notes === null ? '' : cut(c.notes),
  ];
}

/** One line, at most {@link CELL} characters. */
function cut(text: string): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > CELL ? `${line.slice(0, CELL - 3)}...` : line;
}

/** An unknown pipeline is invalid input (exit 2); reported like every command error. */
function refuse(err: SluiceError, opts: GlobalOptions): number {
  process.stderr.write(opts.json ? `${JSON.stringify({ error: err.toJSON() })}\n` : `sluice: ${err.code}: ${err.message}\n`);
  return 2;
}

function withFile<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isSluiceError(err)) throw new SluiceError(err.code, `${path}: ${err.message}`, { details: err.details });
    throw err;
  }
}

function invalid(path: string, message: string): SluiceError {
  return new SluiceError('VALIDATION_FAILED', `${path}: ${message}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
