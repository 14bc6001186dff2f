import { SluiceError } from '../core/errors.js';
import type { Pipeline } from '../core/model.js';
import type { StoredPipeline } from '../store/store.js';

/** An attribute pipeline as ordering sees it. */
export interface AttributeNode {
  name: string;
  target: string;
  fields: string[];
}

function nodeOf(p: Pick<Pipeline, 'name' | 'attribute'>): AttributeNode | null {
  return p.attribute ? { name: p.name, target: p.attribute.target, fields: p.attribute.fields } : null;
}

/** The attribute pipelines of a dataset (latest versions, enabled ones). */
export function attributePipelinesOf(pipelines: StoredPipeline[], dataset: string): StoredPipeline[] {
  return pipelines.filter((p) => p.definition.attribute?.dataset === dataset && !p.definition.disabled);
}

/**
 * Refuses a pipeline that would write a target another pipeline of its dataset already writes, or whose
 * source would close a cycle of pipelines reading each other's targets (the error names the cycle).
 */
export function checkAttributeGraph(candidate: Pick<Pipeline, 'name' | 'attribute'>, others: StoredPipeline[]): void {
  const node = nodeOf(candidate);
  if (!node) return;
  const peers = attributePipelinesOf(others, candidate.attribute!.dataset).filter((p) => p.name !== node.name);
  const owner = peers.find((p) => p.definition.attribute!.target === node.target);
  if (owner) {
    throw new SluiceError('TARGET_TAKEN', `pipeline ${owner.name} already writes ${node.target} of dataset ${candidate.attribute!.dataset}: each field has one attribute pipeline`, {
      details: { target: node.target, pipeline: owner.name },
    });
  }
  const nodes = [...peers.map((p) => nodeOf(p.definition)!), node];
  const found = findAttributeCycle(nodes);
  if (found) {
    // Told from the pipeline being saved: "b (x) -> c (y) -> b (x)".
    const open = found.slice(0, -1);
    const at = Math.max(0, open.indexOf(node.name));
    const cycle = [...open.slice(at), ...open.slice(0, at), open[at]!];
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const path = cycle.map((name) => `${name} (${byName.get(name)!.target})`).join(' -> ');
    throw new SluiceError('PIPELINE_CYCLE', `saving ${node.name} would close a cycle of attribute pipelines reading each other's fields: ${path}`, {
      details: { cycle },
    });
  }
}

/** Edges writer -> reader: a pipeline reading a field comes after the pipeline writing it. */
function readersOf(nodes: AttributeNode[]): Map<string, string[]> {
  const writer = new Map(nodes.map((n) => [n.target, n.name]));
  const readers = new Map<string, string[]>(nodes.map((n) => [n.name, []]));
  for (const n of nodes) {
    for (const f of n.fields) {
      const w = writer.get(f);
      if (w !== undefined && w !== n.name) readers.get(w)!.push(n.name);
    }
  }
  return readers;
}

/**
 * Kahn's algorithm over writer -> reader edges: the order to run a dataset's attribute pipelines in, so
 * each runs after every pipeline whose target it reads. Ties keep the given order. Throws on a cycle.
 */
export function attributeOrder(nodes: AttributeNode[]): string[] {
  const readers = readersOf(nodes);
  const indegree = new Map(nodes.map((n) => [n.name, 0]));
  for (const rs of readers.values()) for (const r of rs) indegree.set(r, indegree.get(r)! + 1);
  const ready = nodes.filter((n) => indegree.get(n.name) === 0).map((n) => n.name);
  const order: string[] = [];
  while (ready.length > 0) {
    const name = ready.shift()!;
    order.push(name);
    for (const r of readers.get(name)!) {
      indegree.set(r, indegree.get(r)! - 1);
      if (indegree.get(r) === 0) ready.push(r);
    }
  }
  if (order.length < nodes.length) {
    const cycle = findAttributeCycle(nodes) ?? [];
    throw new SluiceError('PIPELINE_CYCLE', `attribute pipelines read each other's fields in a cycle: ${cycle.join(' -> ')}`, { details: { cycle } });
  }
  return order;
}

/** A cycle as a closed path of pipeline names (first = last), or null. */
function findAttributeCycle(nodes: AttributeNode[]): string[] | null {
  const readers = readersOf(nodes);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | null => {
    state.set(name, 'open');
    stack.push(name);
    for (const r of readers.get(name) ?? []) {
      if (state.get(r) === 'open') return [...stack.slice(stack.indexOf(r)), r];
      if (!state.has(r)) {
        const found = visit(r);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(name, 'done');
    return null;
  };
  for (const n of nodes) {
    if (state.has(n.name)) continue;
    const found = visit(n.name);
    if (found) return found;
  }
  return null;
}
