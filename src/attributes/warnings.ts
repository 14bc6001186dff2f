import type { Pipeline } from '../core/model.js';
import type { Store } from '../store/store.js';

/** Records looked at for source fields that no record has. */
const SAMPLED_RECORDS = 100;

/**
 * What is odd about an attribute pipeline without being wrong: its dataset does not exist yet, or a source
 * field is in none of the first records and no other pipeline of the dataset writes it (the steps would see
 * it as absent). Empty for other pipelines.
 */
export async function attributeWarnings(store: Store, pipeline: Pipeline): Promise<string[]> {
  const attr = pipeline.attribute;
  if (!attr) return [];
  if (!(await store.getDataset(attr.dataset))) return [`dataset ${attr.dataset} does not exist yet: create it before the pipeline runs`];
  const records = await store.listRecords(attr.dataset, { limit: SAMPLED_RECORDS });
  if (records.length === 0) return [];
  const targets = new Set((await store.listPipelines()).filter((p) => p.name !== pipeline.name && p.definition.attribute?.dataset === attr.dataset).map((p) => p.definition.attribute!.target));
  return attr.fields
    .filter((f) => !targets.has(f) && !records.some((r) => f in r.data))
    .map((f) => `source field ${f} is in none of the first ${records.length} records of dataset ${attr.dataset}, and no other pipeline writes it: the steps will see it as absent`);
}
