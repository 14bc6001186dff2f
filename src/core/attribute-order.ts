import { SluiceError } from './errors.js';

/** An attribute pipeline as ordering sees it. */
export interface AttributeNode {
  name: string;
  target: string;
  fields: string[];
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
export function findAttributeCycle(nodes: AttributeNode[]): string[] | null {
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
