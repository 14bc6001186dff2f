import { SluiceError } from '../core/errors.js';
import type { Pipeline } from '../core/model.js';
import type { StoredPipeline } from '../store/store.js';
import { findAttributeCycle, type AttributeNode } from '../core/attribute-order.js';

export { attributeOrder, type AttributeNode } from '../core/attribute-order.js';

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

