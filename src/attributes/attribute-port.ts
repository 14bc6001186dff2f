import { SluiceError } from '../core/errors.js';
import type { AttemptFence } from '../steps/step-type.js';
import type { AttributeWorkItem, AttributeWorkSelection, ComputedAttributeValue } from '../store/attributes.js';
import type { Store, StoredPipeline } from '../store/store.js';

/**
 * What an attribute pipeline's step may do with the store, and nothing more: read its pipeline, the dataset's
 * records and their values; write values. Writes are fenced by the attempt's lease: an attempt that lost its
 * lease (or was cancelled) writes nothing.
 */
export interface AttributeRecordsPort {
  getPipeline(name: string, version: number): Promise<StoredPipeline | undefined>;
  listPipelines(): Promise<StoredPipeline[]>;
  countRecords(dataset: string): Promise<number>;
  loadAttributeWork(dataset: string, field: string, derivedFields: string[], selection: AttributeWorkSelection): Promise<AttributeWorkItem[]>;
  /** As the store's `saveAttributeValues`, after checking the lease. */
  saveAttributeValues(dataset: string, field: string, pipeline: string, values: ComputedAttributeValue[], now: number, unchanged?: Array<{ recordId: string; sourceRev: number }>): Promise<string[]>;
}

/** The port of one attempt: reads go to `store`; each write first checks `lease`. */
export function fencedAttributePort(store: Store, lease: AttemptFence | undefined): AttributeRecordsPort {
  if (!lease) throw new SluiceError('STEP_FAILED', 'an attribute pipeline runs only inside the engine, under an attempt lease', { retryable: false });
  return {
    getPipeline: (name, version) => store.getPipeline(name, version),
    listPipelines: () => store.listPipelines(),
    countRecords: (dataset) => store.countRecords(dataset),
    loadAttributeWork: (dataset, field, derived, selection) => store.loadAttributeWork(dataset, field, derived, selection),
    async saveAttributeValues(dataset, field, pipeline, values, now, unchanged) {
      lease.check();
      return store.saveAttributeValues(dataset, field, pipeline, values, now, unchanged);
    },
  };
}
