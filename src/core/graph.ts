import { SluiceError, ValidationError } from './errors.js';
import type { Pipeline, Step } from './model.js';
import { STEP_STATES } from './model.js';

/**
 * The steps as the user wrote them: an attribute pipeline runs them inside its one `attribute` step, and
 * its graph shows them rather than that step.
 */
export function writtenSteps(p: Pipeline): Pipeline {
  return p.attribute ? { ...p, steps: p.attribute.steps } : p;
}

/** The DAG of a pipeline, as lookups. Lists keep the order steps are written in. */
export interface PipelineGraph {
  /** Topological order, stable w.r.t. written order: among steps that could go next, the earliest written. */
  order: string[];
  /** Step name -> the steps it needs. */
  needs: Map<string, string[]>;
  /** Step name -> the steps that need it. */
  dependents: Map<string, string[]>;
}

/**
 * Builds the graph of a validated pipeline. Throws a `ValidationError` on a cycle, which
 * `normalizePipeline` would have rejected already.
 */
export function buildGraph(p: Pipeline): PipelineGraph {
  const needs = new Map(p.steps.map((s) => [s.name, [...s.needs]]));
  const dependents = new Map<string, string[]>(p.steps.map((s) => [s.name, []]));
  for (const step of p.steps) for (const need of step.needs) dependents.get(need)?.push(step.name);
  const cycle = findCycle(needs);
  if (cycle) throw new ValidationError([{ path: 'steps', message: `dependency cycle: ${cycle.join(' -> ')}` }]);
  return { order: topologicalOrder(p, needs), needs, dependents };
}

/**
 * Kahn's algorithm; among the steps that could go next, the earliest written (a min-heap of written indexes),
 * so the order reads like the file and the cost stays O(E + V log V) for pipelines of thousands of steps.
 */
function topologicalOrder(p: Pipeline, needs: Map<string, string[]>): string[] {
  const index = new Map(p.steps.map((s, i) => [s.name, i]));
  const waiting = p.steps.map((s) => new Set(s.needs.filter((n) => needs.has(n))).size);
  const dependents = p.steps.map((): number[] => []);
  p.steps.forEach((s, i) => {
    for (const need of new Set(s.needs)) {
      const at = index.get(need);
      if (at !== undefined) dependents[at]!.push(i);
    }
  });
  const ready = new MinHeap();
  waiting.forEach((count, i) => count === 0 && ready.push(i));
  const order: string[] = [];
  for (let i = ready.pop(); i !== undefined; i = ready.pop()) {
    order.push(p.steps[i]!.name);
    for (const next of dependents[i]!) if (--waiting[next]! === 0) ready.push(next);
  }
  return order;
}

/** A binary min-heap of numbers. */
class MinHeap {
  private readonly items: number[] = [];

  push(value: number): void {
    const items = this.items;
    items.push(value);
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      [items[i], items[parent]] = [items[parent]!, value];
      i = parent;
    }
  }

  pop(): number | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    for (let i = 0; ; ) {
      const [left, right] = [2 * i + 1, 2 * i + 2];
      let smallest = i;
      if (left < items.length && items[left]! < items[smallest]!) smallest = left;
      if (right < items.length && items[right]! < items[smallest]!) smallest = right;
      if (smallest === i) break;
      [items[i], items[smallest]] = [items[smallest]!, items[i]!];
      i = smallest;
    }
    return top;
  }
}

/**
 * A dependency cycle, if any, in run order: each step is needed by the one after it, and the last repeats
 * the first (`['a', 'b', 'c', 'a']`: b needs a, c needs b, a needs c). It starts at the cycle's step that
 * comes first in `needs`, so the answer does not depend on where the search began. Unknown names are ignored.
 * The search is iterative (an explicit stack), so a cycle of any length is found without overflowing the
 * call stack.
 */
export function findCycle(needs: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  for (const root of needs.keys()) {
    if (state.has(root)) continue;
    const found = searchFrom(root, needs, state);
    if (found) return inRunOrder(found, needs);
  }
  return null;
}

/** Depth-first search from `root`; the path (along `needs` edges) of the first cycle met, or null. */
function searchFrom(root: string, needs: Map<string, string[]>, state: Map<string, 'open' | 'done'>): string[] | null {
  const path: string[] = [root];
  const onPath = new Map<string, number>([[root, 0]]);
  const next: number[] = [0];
  state.set(root, 'open');
  while (path.length > 0) {
    const name = path[path.length - 1]!;
    const edges = needs.get(name) ?? [];
    const i = next[next.length - 1]!;
    if (i >= edges.length) {
      path.pop();
      next.pop();
      onPath.delete(name);
      state.set(name, 'done');
      continue;
    }
    next[next.length - 1] = i + 1;
    const need = edges[i]!;
    if (!needs.has(need) || state.get(need) === 'done') continue;
    const at = onPath.get(need);
    if (at !== undefined) return path.slice(at);
    state.set(need, 'open');
    onPath.set(need, path.length);
    path.push(need);
    next.push(0);
  }
  return null;
}

/** Turns a path along `needs` edges into run order, rotated to start at the earliest written step. */
function inRunOrder(needsPath: string[], needs: Map<string, string[]>): string[] {
  const written = new Map([...needs.keys()].map((name, i) => [name, i]));
  const ring = [...needsPath].reverse();
  const first = ring.reduce((best, name) => (written.get(name)! < written.get(best)! ? name : best));
  const start = ring.indexOf(first);
  const rotated = [...ring.slice(start), ...ring.slice(0, start)];
  return [...rotated, first];
}

/**
 * The named steps plus everything they need, transitively: what must run for them to run.
 * Throws `SluiceError('STEP_NOT_FOUND')` naming an unknown step.
 */
export function withDependencies(p: Pipeline, names: string[]): Set<string> {
  const needs = new Map(p.steps.map((s) => [s.name, s.needs]));
  for (const name of names) assertStep(p, needs, name);
  return reachable(names, needs);
}

/** The step itself plus every step downstream of it. Throws `SluiceError('STEP_NOT_FOUND')` for an unknown step. */
export function descendants(p: Pipeline, name: string): Set<string> {
  const { dependents } = buildGraph(p);
  assertStep(p, dependents, name);
  return reachable([name], dependents);
}

function reachable(from: string[], edges: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const queue = [...from];
  // An index instead of shift(): shifting a long array copies it each time.
  for (let i = 0; i < queue.length; i++) {
    const name = queue[i]!;
    if (seen.has(name)) continue;
    seen.add(name);
    for (const next of edges.get(name) ?? []) if (!seen.has(next)) queue.push(next);
  }
  return seen;
}

function assertStep(p: Pipeline, steps: Map<string, unknown>, name: string): void {
  if (steps.has(name)) return;
  const known = p.steps.map((s) => s.name).join(', ');
  throw new SluiceError('STEP_NOT_FOUND', `pipeline ${p.name} has no step named "${name}"; its steps are: ${known}`);
}

/**
 * Level of each step: 0 for steps that need nothing, else one more than the deepest need.
 * Steps on one level can run side by side.
 */
export function stepLevels(p: Pipeline): Map<string, number> {
  const { order, needs } = buildGraph(p);
  const levels = new Map<string, number>();
  for (const name of order) {
    const needLevels = (needs.get(name) ?? []).map((n) => levels.get(n) ?? 0);
    levels.set(name, needLevels.length === 0 ? 0 : Math.max(...needLevels) + 1);
  }
  return levels;
}


/** Output formats of {@link renderGraph}. */
export type GraphFormat = 'ascii' | 'mermaid' | 'dot';

/**
 * Draws the DAG of a pipeline: a Mermaid `flowchart TD`, a Graphviz `digraph`, or plain text for a terminal
 * (steps grouped by level, each with what it needs). With `states` (step name -> state), each step shows its
 * state; Mermaid and dot also colour the known step states.
 */
export function renderGraph(p: Pipeline, format: GraphFormat, states?: Record<string, string>): string {
  switch (format) {
    case 'ascii':
      return renderAscii(p, states);
    case 'mermaid':
      return renderMermaid(p, states);
    case 'dot':
      return renderDot(p, states);
  }
}

/** Short notes shown next to a step: disabled, conditional. */
function flags(step: Step): string[] {
  return [...(step.disabled ? ['disabled'] : []), ...(step.if !== null ? ['if'] : [])];
}

function renderAscii(p: Pipeline, states: Record<string, string> | undefined): string {
  const levels = stepLevels(p);
  const rows = p.steps.map((step) => asciiColumns(step, states));
  const widths = [0, 1, 2, 3].map((c) => Math.max(0, ...rows.map((r) => r[c]?.length ?? 0)));
  const lines = [`${p.name} (${p.steps.length} step${p.steps.length === 1 ? '' : 's'})`];
  const deepest = Math.max(-1, ...levels.values());
  for (let level = 0; level <= deepest; level++) {
    lines.push('', `level ${level + 1}`);
    p.steps.forEach((step, i) => {
      if (levels.get(step.name) !== level) return;
      lines.push(`  ${rows[i]!.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ')}`.trimEnd());
    });
  }
  return `${lines.join('\n')}\n`;
}

/** Name, [state] when states are given, type with notes, needs. */
function asciiColumns(step: Step, states: Record<string, string> | undefined): string[] {
  const type = `${step.uses}${flags(step).map((f) => ` (${f})`).join('')}`;
  const needs = step.needs.length > 0 ? `<- ${step.needs.join(', ')}` : '';
  return states ? [step.name, `[${states[step.name] ?? '-'}]`, type, needs] : [step.name, type, needs];
}

// Mermaid ids are positional (s0, s1, ...): step names may contain '-' or be keywords like `end`.
function renderMermaid(p: Pipeline, states: Record<string, string> | undefined): string {
  const ids = new Map(p.steps.map((s, i) => [s.name, `s${i}`]));
  const lines = ['flowchart TD'];
  for (const step of p.steps) lines.push(`  ${ids.get(step.name)}["${mermaidText(nodeLabel(step, states))}"]`);
  for (const edge of edges(p)) lines.push(`  ${ids.get(edge.from)} --> ${ids.get(edge.to)}`);
  if (states) {
    for (const state of STEP_STATES) lines.push(`  classDef ${state} ${mermaidStyle(STATE_COLOURS[state])}`);
    for (const step of p.steps) {
      const state = states[step.name];
      if (isKnownState(state)) lines.push(`  class ${ids.get(step.name)} ${state}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function renderDot(p: Pipeline, states: Record<string, string> | undefined): string {
  const lines = [`digraph ${dotId(p.name)} {`, '  rankdir=TB;', '  node [shape=box, style=rounded];'];
  for (const step of p.steps) {
    const attributes = [`label=${dotId(nodeLabel(step, states))}`];
    const state = states?.[step.name];
    if (isKnownState(state)) attributes.push('style="rounded,filled"', `fillcolor="${STATE_COLOURS[state]}"`);
    if (step.disabled) attributes.push('color="gray"', 'fontcolor="gray"');
    lines.push(`  ${dotId(step.name)} [${attributes.join(', ')}];`);
  }
  for (const edge of edges(p)) lines.push(`  ${dotId(edge.from)} -> ${dotId(edge.to)};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

function nodeLabel(step: Step, states: Record<string, string> | undefined): string {
  const notes = flags(step).map((f) => ` (${f})`).join('');
  const state = states?.[step.name];
  return state === undefined ? `${step.name}${notes}` : `${step.name}${notes}\n${state}`;
}

/** Edges from each need to the step that needs it, in written order. */
function edges(p: Pipeline): Array<{ from: string; to: string }> {
  buildGraph(p); // rejects cycles before anything is drawn
  return p.steps.flatMap((step) => step.needs.map((need) => ({ from: need, to: step.name })));
}

/** A quoted Graphviz id: any text is safe once `"` and `\` are escaped. */
function dotId(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** Text inside a Mermaid `["..."]` label: quotes become entities, newlines line breaks. */
function mermaidText(text: string): string {
  return text.replace(/"/g, '#quot;').replace(/\n/g, '<br/>');
}

function mermaidStyle(colour: string): string {
  return `fill:${colour},stroke:#555`;
}

type KnownState = (typeof STEP_STATES)[number];

function isKnownState(state: string | undefined): state is KnownState {
  return state !== undefined && (STEP_STATES as readonly string[]).includes(state);
}

const STATE_COLOURS: Record<KnownState, string> = {
  pending: '#eeeeee',
  queued: '#dde7f5',
  running: '#bfd7ff',
  retrying: '#ffe2a8',
  succeeded: '#c6efce',
  cached: '#d9f2e0',
  skipped: '#f2f2f2',
  failed: '#ffc7ce',
  blocked: '#f8cbad',
  waiting: '#e4d7f5',
  cancelled: '#d9d9d9',
};
