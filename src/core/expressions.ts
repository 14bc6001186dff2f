import { redactSecrets } from './redact.js';
import type jsonata from 'jsonata';
import { jsonataPackage } from './lazy-packages.js';
import { SluiceError } from './errors.js';
import { backtrackingRisk } from './regex-risk.js';
import { isRecord } from './key-path.js';
import type { ExpressionContext, Step } from './model.js';

/**
 * JSONata expressions: `${{ expr }}` templates inside strings of `with`, and bare `if` conditions.
 * Both are evaluated against the {@link ExpressionContext} (`input`, `steps`, `run`, `secrets`, `record`).
 */

/** A piece of a string: literal text, or the source of one `${{ }}` expression (trimmed). */
export type TemplatePart = { text: string } | { expr: string };

/** A string split into parts; `error` says why scanning stopped early (an unterminated `${{`). */
export interface ParsedTemplate {
  parts: TemplatePart[];
  error?: string;
}

// Definitions hold a bounded set of expressions; the cap only guards a long-lived server against growth.
const MAX_CACHED = 1000;
/**
 * Longest an expression may evaluate: checked between JSONata's evaluation steps, so a runaway expression (a
 * recursive lambda, a huge range) fails its step with EXPRESSION_FAILED instead of holding a worker. Default
 * and only value: 5 s.
 */
export const EXPRESSION_TIME_LIMIT_MS = 5000;
// Nested evaluation steps at once (JSONata's own guard): a non-terminating recursion that is not a tail call
// fails here rather than filling memory with suspended calls.
const MAX_EVALUATION_DEPTH = 20_000;
// A long evaluation hands the event loop back this often (other runs, HTTP requests, heartbeats go on).
const YIELD_EVERY_MS = 10;
// Evaluation steps between two looks at the clock.
const STEPS_PER_CHECK = 256;
const compiled = new Map<string, jsonata.Expression>();
// Compiled expressions that may run a regex (see mayRunRegex); the rest never leave this thread.
const runsRegex = new WeakSet<jsonata.Expression>();
let truthiness: jsonata.Expression | undefined;

/**
 * Evaluates one expression where it can be stopped even inside a native regex (the host runs it in a worker
 * thread it terminates past a time limit) and resolves with its plain JSON value. Rejects with a SluiceError:
 * `EXPRESSION_FAILED` as in-process evaluation would, or `EXPRESSION_TIMEOUT`.
 */
export type IsolatedEvaluator = (expr: string, ctx: ExpressionContext) => Promise<unknown>;

let isolated: IsolatedEvaluator | null = null;

/**
 * Sets where expressions that may run a regex are evaluated: regex literals (in `$match`, `$replace`, `$split`,
 * `$contains`, ...) and `$eval`, whose text can build a regex the validation screen never saw. A regex cannot be
 * interrupted once it runs, so on the host's event loop one that backtracks blocks everything. Default (null):
 * in this thread, with only the validation screen (src/core/regex-risk.ts) in front. Other expressions always
 * evaluate in this thread, bounded by JSONata's depth and time checks.
 */
export function useIsolatedEvaluator(evaluator: IsolatedEvaluator | null): void {
  isolated = evaluator;
}

/**
 * Evaluates `expr` in this thread (never through the {@link IsolatedEvaluator}) and returns its value as plain
 * JSON; what an expression thread runs. Throws `SluiceError('EXPRESSION_FAILED')` naming the expression.
 */
export async function evaluateHere(expr: string, ctx: ExpressionContext): Promise<unknown> {
  return toPlainJson(await evaluate(expr, ctx, false));
}

/** Every expression inside `${{ ... }}` in any string nested in `value`, in document order. */
export function findTemplates(value: unknown): string[] {
  const found: string[] = [];
  visitStrings(value, (text) => {
    for (const part of parseTemplate(text).parts) if ('expr' in part) found.push(part.expr);
  });
  return found;
}

/** Where a `${{ }}` value lands: the path of its string below the rendered value, and what precedes it. */
export interface TemplateSpot {
  path: readonly (string | number)[];
  /** The string's text rendered so far, before this value. */
  before: string;
  /** The template is the whole string (surrounding whitespace aside), so the value keeps its type by default. */
  whole: boolean;
}

/**
 * Writes one evaluated `${{ }}` value into its string (e.g. shell-quotes it inside a `command`'s `run`). For a
 * whole-string template the result is the string's value; otherwise it must be the text to splice in.
 */
export type TemplateEncoder = (value: unknown, spot: TemplateSpot) => unknown;

/**
 * A deep copy of `value` with every `${{ expr }}` replaced. A string that is exactly one template (surrounding
 * whitespace aside) takes the expression's value with its type (object, number, ...), and an undefined value
 * drops the key (null inside lists); otherwise each value is interpolated as text: strings as they are,
 * undefined as nothing, other values as JSON. `encode`, when given, writes each value instead (see
 * {@link TemplateEncoder}). Throws `SluiceError('EXPRESSION_FAILED')` naming the expression.
 */
export async function renderTemplate(value: unknown, ctx: ExpressionContext, encode?: TemplateEncoder, path: (string | number)[] = []): Promise<unknown> {
  if (typeof value === 'string') return renderString(value, ctx, encode, path);
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const [i, item] of value.entries()) out.push((await renderTemplate(item, ctx, encode, [...path, i])) ?? null);
    return out;
  }
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const rendered = await renderTemplate(item, ctx, encode, [...path, key]);
      if (rendered !== undefined) out[key] = rendered;
    }
    return out;
  }
  return value;
}

/** A `${{ }}` value as text, as interpolation writes it: strings as they are, undefined as nothing, else JSON. */
export function templateText(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(toPlainJson(value)) ?? '';
}

/** Evaluates a bare JSONata condition with JSONata's truthiness (`$boolean`); undefined is false. */
export async function evaluateCondition(expr: string, ctx: ExpressionContext): Promise<boolean> {
  const value = await evaluate(expr, ctx);
  return (await (truthiness ??= jsonataPackage()('$boolean($v)')).evaluate(undefined, { v: value })) === true;
}

/** The syntax error of a JSONata expression, with its position, or null when it compiles. */
export function checkExpression(expr: string): string | null {
  if (isPlainPath(expr)) return null;
  try {
    compile(expr);
    return null;
  } catch (err) {
    return describeJsonataError(err);
  }
}

// `input.customer.id`, `steps.fetch.body`: the most common expression by far, and always valid JSONata.
const PLAIN_PATH = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;
// Words JSONata reads as literals or operators; a path holding one goes through the parser.
const PATH_KEYWORDS = new Set(['and', 'or', 'in', 'true', 'false', 'null', 'function']);

/**
 * Whether `expr` is a dotted path of plain names, valid without compiling it: JSONata's parser rebuilds its
 * operator table on every call, which made checking a definition of thousands of templates slow.
 */
function isPlainPath(expr: string): boolean {
  return PLAIN_PATH.test(expr) && !expr.split('.').some((name) => PATH_KEYWORDS.has(name));
}

/**
 * Names X that the step's `if` and `with` templates read as `steps.X`, ``steps.`X` `` or `steps["X"]`,
 * without duplicates, in order of appearance.
 */
export function referencedSteps(step: Pick<Step, 'if' | 'with'>): string[] {
  const expressions = [...(step.if === null ? [] : [step.if]), ...findTemplates(step.with)];
  const names = new Set<string>();
  for (const expr of expressions) for (const name of stepNamesIn(expr)) names.add(name);
  return [...names];
}

// `steps` as a root field: not a field of something else (`x.steps`) nor a variable (`$steps`), but `$$.steps`
// (the root) counts. A plain name stops at the first character JSONata would not take into a name.
const STEP_REFERENCE =
  /(?:^|[^\w$.`]|\$\$?\.)steps\s*(?:\.\s*([A-Za-z0-9_]+)|\.\s*`([^`]+)`|\[\s*"([^"]+)"\s*\]|\[\s*'([^']+)'\s*\])/g;

function stepNamesIn(expr: string): string[] {
  return [...expr.matchAll(STEP_REFERENCE)].map((m) => (m[1] ?? m[2] ?? m[3] ?? m[4])!);
}

/**
 * Splits a string into text and `${{ }}` expressions. The end of an expression is the first `}}` outside
 * string literals and braces, so object constructors such as `${{ {"a": {"b": 1}} }}` stay whole.
 */
export function parseTemplate(text: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let from = 0;
  while (from < text.length) {
    const start = text.indexOf('${{', from);
    if (start < 0) break;
    if (start > from) parts.push({ text: text.slice(from, start) });
    const end = findExpressionEnd(text, start + 3);
    if (end < 0) return { parts, error: `unterminated "\${{" at character ${start + 1}: expected a closing "}}"` };
    parts.push({ expr: text.slice(start + 3, end).trim() });
    from = end + 2;
  }
  if (from < text.length) parts.push({ text: text.slice(from) });
  return { parts };
}

function findExpressionEnd(text: string, from: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quote !== null) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0 && text[i + 1] === '}') return i;
      depth = Math.max(0, depth - 1);
    }
  }
  return -1;
}

/** Calls `visit` with every string nested in `value` and its path below `value`. */
export function visitStrings(
  value: unknown,
  visit: (text: string, path: (string | number)[]) => void,
  path: (string | number)[] = [],
): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) value.forEach((item, i) => visitStrings(item, visit, [...path, i]));
  else if (isRecord(value)) for (const [key, item] of Object.entries(value)) visitStrings(item, visit, [...path, key]);
}

async function renderString(text: string, ctx: ExpressionContext, encode: TemplateEncoder | undefined, path: (string | number)[]): Promise<unknown> {
  const { parts, error } = parseTemplate(text);
  if (error !== undefined) throw new SluiceError('EXPRESSION_FAILED', `${error} in ${JSON.stringify(text)}`);
  const expressions = parts.filter((p): p is { expr: string } => 'expr' in p);
  if (expressions.length === 0) return text;
  const onlyExpression = expressions.length === 1 && parts.every((p) => 'expr' in p || p.text.trim() === '');
  if (onlyExpression) {
    const value = toPlainJson(await evaluateAt(expressions[0]!.expr, ctx, path));
    return encode ? encode(value, { path, before: '', whole: true }) : value;
  }
  let out = '';
  for (const part of parts) {
    if ('text' in part) out += part.text;
    else {
      const value = await evaluateAt(part.expr, ctx, path);
      out += encode ? templateText(encode(value, { path, before: out, whole: false })) : templateText(value);
    }
  }
  return out;
}

/** {@link evaluate}; a timeout names the path of the string below the rendered value (e.g. a `with` key). */
async function evaluateAt(expr: string, ctx: ExpressionContext, path: readonly (string | number)[]): Promise<unknown> {
  try {
    return await evaluate(expr, ctx);
  } catch (err) {
    const { code, message, details } = err as SluiceError;
    if (code !== 'EXPRESSION_TIMEOUT' || path.length === 0) throw err;
    throw new SluiceError(code, `${path.join('.')}: ${message}`, { cause: err, details: { ...(isRecord(details) ? details : {}), path: [...path] } });
  }
}

/** Strips JSONata's sequence markers and anything JSON cannot hold (functions), so results are plain data. */
function toPlainJson(value: unknown): unknown {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text === undefined ? undefined : JSON.parse(text);
}

async function evaluate(expr: string, ctx: ExpressionContext, mayIsolate = true): Promise<unknown> {
  let expression: jsonata.Expression;
  try {
    expression = compile(expr);
  } catch (err) {
    throw evaluationFailure(expr, ctx, err);
  }
  // The isolated evaluator's errors are final: it ran this same function in its thread.
  if (mayIsolate && isolated !== null && runsRegex.has(expression)) return isolated(expr, ctx);
  try {
    // Empty bindings give every call its own frame: a compiled expression is shared by concurrent runs.
    return await expression.evaluate(ctx, {});
  } catch (err) {
    throw evaluationFailure(expr, ctx, err);
  }
}

function evaluationFailure(expr: string, ctx: ExpressionContext, err: unknown): SluiceError {
  const reason = redactSecrets(describeJsonataError(err), ctx.secrets);
  return new SluiceError('EXPRESSION_FAILED', `expression ${JSON.stringify(expr)} failed: ${reason}`, { cause: err });
}

function compile(expr: string): jsonata.Expression {
  const cached = compiled.get(expr);
  if (cached) return cached;
  const expression = jsonataPackage()(expr, { stack: MAX_EVALUATION_DEPTH });
  const ast = expression.ast();
  assertSafeRegexes(ast, expr);
  if (mayRunRegex(ast)) runsRegex.add(expression);
  expression.assign(EVALUATE_ENTRY as unknown as string, onEvaluationStep);
  if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value!);
  compiled.set(expr, expression);
  return expression;
}

/** Throws EXPRESSION_FAILED when a regex literal of the expression may backtrack catastrophically. */
function assertSafeRegexes(ast: unknown, expr: string): void {
  for (const regex of regexLiterals(ast)) {
    const risk = backtrackingRisk(regex.source, regex.flags);
    if (risk !== null) throw new SluiceError('EXPRESSION_FAILED', `regex /${regex.source}/ may backtrack: ${risk}`, { details: { expression: expr } });
  }
}

/** Every RegExp in a JSONata AST (regex literals are the only way an expression's own text makes one). */
function regexLiterals(ast: unknown): RegExp[] {
  const found: RegExp[] = [];
  visitAst(ast, (node) => {
    if (node instanceof RegExp) found.push(node);
  });
  return found;
}

/** Whether an AST holds a regex literal, or reads `$eval` (which may compile a regex from data at run time). */
function mayRunRegex(ast: unknown): boolean {
  let found = false;
  visitAst(ast, (node) => {
    const { type, value } = node as { type?: unknown; value?: unknown };
    if (node instanceof RegExp || (type === 'variable' && value === 'eval')) found = true;
  });
  return found;
}

/** Calls `visit` with every object of a JSONata AST, each once. */
function visitAst(ast: unknown, visit: (node: object) => void): void {
  const seen = new Set<object>();
  const stack: unknown[] = [ast];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    visit(node);
    if (!(node instanceof RegExp)) for (const child of Object.values(node)) stack.push(child);
  }
}

// JSONata calls the function bound to this symbol before each evaluation step, and awaits it.
const EVALUATE_ENTRY = Symbol.for('jsonata.__evaluate_entry');

/** What {@link onEvaluationStep} reads of JSONata's frames. */
interface JsonataFrame {
  base?: JsonataFrame;
  [CLOCK]?: EvaluationClock;
}

/** Per evaluation (on JSONata's root frame of that call): steps so far, when it started, when it last yielded. */
interface EvaluationClock {
  steps: number;
  startedAt: number;
  yieldedAt: number;
}

// Kept on JSONata's root frame of each evaluation: a property read is cheaper than a WeakMap lookup per step.
const CLOCK = Symbol('sluice.evaluationClock');

/**
 * JSONata's evaluation is one long chain of promise continuations that never returns to the event loop; every
 * {@link STEPS_PER_CHECK} steps this looks at the clock, fails an evaluation past
 * {@link EXPRESSION_TIME_LIMIT_MS} and, every {@link YIELD_EVERY_MS}, lets the event loop run.
 */
function onEvaluationStep(_node: unknown, _input: unknown, environment: JsonataFrame): Promise<void> | undefined {
  const base = environment.base ?? environment;
  let clock = base[CLOCK];
  if (clock === undefined) {
    const now = performance.now();
    clock = base[CLOCK] = { steps: 0, startedAt: now, yieldedAt: now };
  }
  if (++clock.steps % STEPS_PER_CHECK !== 0) return undefined;
  const now = performance.now();
  if (now - clock.startedAt > EXPRESSION_TIME_LIMIT_MS) {
    throw new SluiceError('EXPRESSION_FAILED', `took longer than ${EXPRESSION_TIME_LIMIT_MS} ms (${clock.steps} evaluation steps): stopped`);
  }
  if (now - clock.yieldedAt < YIELD_EVERY_MS) return undefined;
  clock.yieldedAt = now;
  return new Promise((resolve) => setImmediate(resolve));
}

function describeJsonataError(err: unknown): string {
  const { message, position } = (err ?? {}) as { message?: unknown; position?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : String(err);
  return typeof position === 'number' ? `${text} (at position ${position})` : text;
}

// JSONata messages quote the values they choke on; a secret must never reach an error that gets stored
// (redactSecrets, from redact.ts).
