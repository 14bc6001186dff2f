import { redactSecrets } from './redact.js';
import jsonata from 'jsonata';
import { SluiceError } from './errors.js';
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
// JSONata checks this between evaluation steps, so a runaway recursive lambda fails instead of hanging a worker.
const EVALUATION_TIMEOUT_MS = 5000;
const compiled = new Map<string, jsonata.Expression>();
const truthiness = jsonata('$boolean($v)');

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
  return (await truthiness.evaluate(undefined, { v: value })) === true;
}

/** The syntax error of a JSONata expression, with its position, or null when it compiles. */
export function checkExpression(expr: string): string | null {
  try {
    compile(expr);
    return null;
  } catch (err) {
    return describeJsonataError(err);
  }
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
    const value = toPlainJson(await evaluate(expressions[0]!.expr, ctx));
    return encode ? encode(value, { path, before: '', whole: true }) : value;
  }
  let out = '';
  for (const part of parts) {
    if ('text' in part) out += part.text;
    else {
      const value = await evaluate(part.expr, ctx);
      out += encode ? templateText(encode(value, { path, before: out, whole: false })) : templateText(value);
    }
  }
  return out;
}

/** Strips JSONata's sequence markers and anything JSON cannot hold (functions), so results are plain data. */
function toPlainJson(value: unknown): unknown {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text === undefined ? undefined : JSON.parse(text);
}

async function evaluate(expr: string, ctx: ExpressionContext): Promise<unknown> {
  try {
    // Empty bindings give every call its own frame: a compiled expression is shared by concurrent runs.
    return await compile(expr).evaluate(ctx, {});
  } catch (err) {
    const reason = redactSecrets(describeJsonataError(err), ctx.secrets);
    throw new SluiceError('EXPRESSION_FAILED', `expression ${JSON.stringify(expr)} failed: ${reason}`, { cause: err });
  }
}

function compile(expr: string): jsonata.Expression {
  const cached = compiled.get(expr);
  if (cached) return cached;
  const expression = jsonata(expr, { timeout: EVALUATION_TIMEOUT_MS });
  if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value!);
  compiled.set(expr, expression);
  return expression;
}

function describeJsonataError(err: unknown): string {
  const { message, position } = (err ?? {}) as { message?: unknown; position?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : String(err);
  return typeof position === 'number' ? `${text} (at position ${position})` : text;
}

// JSONata messages quote the values they choke on; a secret must never reach an error that gets stored
// (redactSecrets, from redact.ts).
