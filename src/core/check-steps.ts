import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { ajv2020Package, ajvPackage } from './lazy-packages.js';
import { checkExpression, parseTemplate, referencedSteps, visitStrings } from './expressions.js';
import { findCycle } from './graph.js';
import { globProblem } from './glob.js';
import { isRecord, type KeyPath } from './key-path.js';
import { closest, schemaIssues, type RawIssue } from './schema-issues.js';
import type { StepSchemas, StepTypeSchema } from './step-schemas.js';

/**
 * Checks of the `steps` mapping that JSON Schema cannot express: step types, needs, cycles, expressions,
 * `with` against the step type's schema. Runs on raw (possibly invalid) input, so every check guards types.
 */
export function stepIssues(steps: Record<string, unknown>, stepTypes: StepSchemas): RawIssue[] {
  const issues: RawIssue[] = [];
  const needs = new Map<string, string[]>();
  // Each expression is compiled once: the valid ones are checked for the steps they read afterwards.
  const validSites = new Map<string, ExpressionSite[]>();
  for (const [name, step] of Object.entries(steps)) {
    if (!isRecord(step)) continue;
    const path = ['steps', name];
    const expressions = expressionIssues(step, path);
    issues.push(
      ...usesIssues(step, path, stepTypes),
      ...needsIssues(step, name, steps, path),
      ...expressions.issues,
      ...configIssues(step, path, stepTypes),
      ...concurrencyIssues(step, path),
      ...cacheIssues(step, path),
    );
    needs.set(name, stringList(step.needs).filter((n) => n !== name && isRecord(steps[n])));
    validSites.set(name, expressions.valid);
  }
  return [...issues, ...cycleIssues(needs, steps), ...referenceIssues(steps, needs, validSites)];
}

/** The condition of `if`, accepting GitHub-Actions style `${{ expr }}` around it. */
export function unwrapCondition(text: string): string {
  const { parts, error } = parseTemplate(text.trim());
  const only = parts.length === 1 ? parts[0] : undefined;
  return error === undefined && only !== undefined && 'expr' in only ? only.expr : text;
}

function usesIssues(step: Record<string, unknown>, path: KeyPath, stepTypes: StepSchemas): RawIssue[] {
  if (typeof step.uses !== 'string' || step.uses === '' || stepTypes.has(step.uses)) return [];
  const known = [...stepTypes.keys()].sort();
  const guess = closest(step.uses, known);
  const message = `unknown step type "${step.uses}"${guess ? ` (did you mean "${guess}"?)` : ''}; known types: ${known.join(', ')}`;
  return [{ path: [...path, 'uses'], target: 'value', message }];
}

function needsIssues(step: Record<string, unknown>, name: string, steps: Record<string, unknown>, path: KeyPath): RawIssue[] {
  if (!Array.isArray(step.needs)) return [];
  const issues: RawIssue[] = [];
  step.needs.forEach((need, i) => {
    if (typeof need !== 'string') return;
    const at = [...path, 'needs', i];
    if (need === name) issues.push({ path: at, target: 'value', message: `step "${name}" needs itself` });
    else if (!Object.hasOwn(steps, need)) issues.push({ path: at, target: 'value', message: missingStepMessage(`needs "${need}"`, need, steps) });
  });
  return issues;
}

function missingStepMessage(what: string, name: string, steps: Record<string, unknown>, hint?: string): string {
  const known = Object.keys(steps);
  const guess = closest(name, known);
  const note = hint ?? (guess ? `did you mean "${guess}"?` : undefined);
  return `${what}, but there is no step named "${name}"${note ? ` (${note})` : ''}; steps: ${shortList(known)}`;
}

/** One expression of a step and where it was written. */
interface ExpressionSite {
  path: KeyPath;
  expr: string;
  kind: 'if' | 'template';
}

function expressionSites(step: Record<string, unknown>, path: KeyPath): { sites: ExpressionSite[]; issues: RawIssue[] } {
  const sites: ExpressionSite[] = [];
  const issues: RawIssue[] = [];
  if (typeof step.if === 'string' && step.if.trim() !== '') sites.push({ path: [...path, 'if'], expr: unwrapCondition(step.if), kind: 'if' });
  visitStrings(step.with, (text, sub) => {
    const at = [...path, 'with', ...sub];
    const { parts, error } = parseTemplate(text);
    for (const part of parts) if ('expr' in part) sites.push({ path: at, expr: part.expr, kind: 'template' });
    if (error !== undefined) issues.push({ path: at, target: 'value', message: error });
  });
  const cache = step.cache;
  if (isRecord(cache) && typeof cache.key === 'string') {
    const at = [...path, 'cache', 'key'];
    const { parts, error } = parseTemplate(cache.key);
    for (const part of parts) if ('expr' in part) sites.push({ path: at, expr: part.expr, kind: 'template' });
    if (error !== undefined) issues.push({ path: at, target: 'value', message: error });
  }
  return { sites, issues };
}

/** `cache.inputs` and `cache.outputs` globs: relative to the pipeline file, with balanced brackets. */
function cacheIssues(step: Record<string, unknown>, path: KeyPath): RawIssue[] {
  const cache = step.cache;
  if (!isRecord(cache)) return [];
  const issues: RawIssue[] = [];
  for (const list of ['inputs', 'outputs'] as const) {
    const globs = cache[list];
    if (!Array.isArray(globs)) continue;
    globs.forEach((glob, i) => {
      const problem = typeof glob === 'string' && glob !== '' ? globProblem(glob) : null;
      if (problem) issues.push({ path: [...path, 'cache', list, i], target: 'value', message: problem });
    });
  }
  return issues;
}

/** Problems with the step's expressions, and the sites whose expressions compile. */
function expressionIssues(step: Record<string, unknown>, path: KeyPath): { issues: RawIssue[]; valid: ExpressionSite[] } {
  const { sites, issues } = expressionSites(step, path);
  const valid: ExpressionSite[] = [];
  for (const site of sites) {
    const error = checkExpression(site.expr);
    if (error === null) {
      valid.push(site);
      continue;
    }
    const what = site.kind === 'if' ? 'invalid JSONata condition' : `invalid JSONata in "\${{ ${site.expr} }}"`;
    issues.push({ path: site.path, target: 'value', message: `${what}: ${error}` });
  }
  return { issues, valid };
}

/**
 * Expressions may only read `steps.X` of steps that run before: X must be among the step's needs, directly
 * or through other steps. Anything else would read null at run time, or depend on timing.
 */
function referenceIssues(steps: Record<string, unknown>, needs: Map<string, string[]>, validSites: Map<string, ExpressionSite[]>): RawIssue[] {
  const issues: RawIssue[] = [];
  for (const [name, sites] of validSites) {
    const isUpstream = upstreamTest(name, needs);
    for (const site of sites) {
      for (const ref of referencedSteps({ if: site.expr, with: {} })) {
        const message = referenceProblem(ref, name, steps, isUpstream, site.expr);
        if (message) issues.push({ path: site.path, target: 'value', message });
      }
    }
  }
  return issues;
}

/**
 * Whether a step runs before `name`. A direct need answers at once (the common case); the full set of
 * ancestors is only walked, once, for a reference that is not one, so a long chain of steps each reading its
 * predecessor validates in linear time.
 */
function upstreamTest(name: string, needs: Map<string, string[]>): (ref: string) => boolean {
  const direct = new Set(needs.get(name) ?? []);
  let all: Set<string> | undefined;
  return (ref) => direct.has(ref) || (all ??= ancestors(name, needs)).has(ref);
}

function referenceProblem(ref: string, name: string, steps: Record<string, unknown>, isUpstream: (ref: string) => boolean, expr: string): string | undefined {
  if (isUpstream(ref)) return undefined;
  if (ref === name) return `reads steps.${ref}, its own output, which does not exist while it runs`;
  if (!Object.hasOwn(steps, ref)) {
    // `steps.my-step` parses as `steps.my - step`; show the quoted form of what was probably meant.
    const dashed = new RegExp(`steps\\s*\\.\\s*(${ref}-[A-Za-z0-9_-]*)`).exec(expr);
    const hint = dashed ? `in JSONata a name with "-" needs backquotes: steps.\`${dashed[1]}\`` : undefined;
    return missingStepMessage(`reads steps.${ref}`, ref, steps, hint);
  }
  return `reads steps.${ref}, but "${ref}" is not among its needs, directly or through other steps; add "${ref}" to needs`;
}

function ancestors(name: string, needs: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const queue = [...(needs.get(name) ?? [])];
  for (let i = 0; i < queue.length; i++) {
    const next = queue[i]!;
    if (seen.has(next)) continue;
    seen.add(next);
    for (const need of needs.get(next) ?? []) if (!seen.has(need)) queue.push(need);
  }
  return seen;
}

// Messages list at most this many names (steps of a list, steps of a cycle) and say how many were left out.
const LISTED_NAMES = 20;

function shortList(names: string[], separator = ', '): string {
  if (names.length <= LISTED_NAMES) return names.join(separator);
  return `${names.slice(0, LISTED_NAMES).join(separator)}${separator}... (${names.length} in all)`;
}

/** A cycle as `a -> b -> ... -> a`; a long one keeps its first and last steps and says how many it has. */
function cycleText(cycle: string[]): string {
  if (cycle.length <= LISTED_NAMES) return cycle.join(' -> ');
  const head = cycle.slice(0, LISTED_NAMES / 2).join(' -> ');
  const tail = cycle.slice(-3).join(' -> ');
  return `${head} -> ... -> ${tail} (${cycle.length - 1} steps)`;
}

/**
 * Every cycle, one issue each: after reporting one, its closing edge is removed and the search repeats.
 * The issue points at the `needs` entry that closes the cycle.
 */
function cycleIssues(needs: Map<string, string[]>, steps: Record<string, unknown>): RawIssue[] {
  const remaining = new Map([...needs].map(([k, v]) => [k, [...v]]));
  const issues: RawIssue[] = [];
  for (let cycle = findCycle(remaining); cycle !== null; cycle = findCycle(remaining)) {
    const [first, closing] = [cycle[0]!, cycle[cycle.length - 2]!];
    const written = (steps[first] as Record<string, unknown>).needs;
    const index = Array.isArray(written) ? written.indexOf(closing) : 0;
    issues.push({ path: ['steps', first, 'needs', index], target: 'value', message: `dependency cycle: ${cycleText(cycle)}` });
    remaining.set(first, (remaining.get(first) ?? []).filter((n) => n !== closing));
  }
  return issues;
}

function concurrencyIssues(step: Record<string, unknown>, path: KeyPath): RawIssue[] {
  if (step.concurrency_limit === undefined || step.concurrency_key !== undefined) return [];
  const message = 'concurrency_limit needs a concurrency_key: the limit applies to the steps sharing that key';
  return [{ path: [...path, 'concurrency_limit'], target: 'key', message }];
}

// Plugins may use keywords and formats this Ajv does not know; ignore them rather than reject the plugin.
const configAjvOptions = { allErrors: true, verbose: true, strict: false, logger: false } as const;
// Made at first use: each instance compiles its meta-schemas, which would slow every import of the library.
let configAjv: Ajv | undefined;
let configAjv2020: Ajv2020 | undefined;
const configValidators = new WeakMap<StepTypeSchema, ValidateFunction | Error>();

function configIssues(step: Record<string, unknown>, path: KeyPath, stepTypes: StepSchemas): RawIssue[] {
  const type = typeof step.uses === 'string' ? stepTypes.get(step.uses) : undefined;
  const config = step.with ?? {};
  if (!type || !isRecord(config)) return [];
  const validate = configValidator(type);
  if (validate instanceof Error) {
    return [{ path: [...path, 'uses'], target: 'value', message: `step type "${type.type}" has an invalid config schema: ${validate.message}` }];
  }
  if (validate(config)) return [];
  const errors = (validate.errors ?? []).filter((e) => !dependsOnTemplate(e, config));
  // No hints: a plugin's `#/definitions/duration` need not mean ours.
  return schemaIssues(errors, config, [...path, 'with'], {});
}

function configValidator(type: StepTypeSchema): ValidateFunction | Error {
  let validate = configValidators.get(type);
  if (!validate) {
    try {
      // Draft-07 unless the schema asks for 2020-12, the two drafts plugin authors reach for.
      const draft2020 = String(type.configSchema.$schema ?? '').includes('2020-12');
      validate = (draft2020 ? (configAjv2020 ??= new (ajv2020Package().Ajv2020)(configAjvOptions)) : (configAjv ??= new (ajvPackage().Ajv)(configAjvOptions))).compile(type.configSchema);
    } catch (err) {
      validate = err instanceof Error ? err : new Error(String(err));
    }
    configValidators.set(type, validate);
  }
  return validate;
}

// Keywords about which keys exist hold whatever the templates below evaluate to.
const SHAPE_KEYWORDS = new Set(['required', 'additionalProperties', 'propertyNames', 'dependentRequired', 'dependencies']);

/**
 * A `${{ }}` template is only known at run time, so a value holding one is accepted wherever it sits: drop
 * errors about values at or above a template string.
 */
function dependsOnTemplate(error: ErrorObject, config: Record<string, unknown>): boolean {
  if (SHAPE_KEYWORDS.has(error.keyword)) return false;
  let holdsTemplate = false;
  visitStrings(valueAt(config, error.instancePath), (text) => {
    if (text.includes('${{')) holdsTemplate = true;
  });
  return holdsTemplate;
}

function valueAt(root: unknown, pointer: string): unknown {
  let node = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = (node as Record<string, unknown> | undefined)?.[key];
  }
  return node;
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
