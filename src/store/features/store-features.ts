import type { AttributeSummary, AttributeValue, AttributeValueStore, AttributeWorkItem, AttributeWorkSelection, ComputedAttributeValue } from '../attributes.js';
import type { EvalCase, EvalPatch, EvalResult, EvalStore, EvalSummary, NewEvalCase } from '../evals.js';
import type { ApiToken, DataRecord, DatasetPort, DatasetRecord, NewApiToken, NewDataRecord, RecordPage, TokenPort } from '../store.js';
import { AttributeValues } from './attribute-values.js';
import { Datasets } from './datasets.js';
import { EvalCases } from './evals.js';
import type { FeatureRunner } from './feature-runner.js';
import { Operations } from './operations.js';

/** The feature objects of a store, made at the first call (after the driver has set up its runner). */
interface Parts {
  datasets: Datasets;
  evals: EvalCases;
  values: AttributeValues;
  ops: Operations;
}

/**
 * The `Store` methods both drivers answer with the same rules (datasets, eval cases, derived attribute values,
 * tokens, trigger slots, the latest event id, the queue depth): a driver extends this class and gives its
 * {@link FeatureRunner}.
 */
export abstract class StoreFeatures implements DatasetPort, TokenPort, AttributeValueStore, EvalStore {
  /** The driver's runner of the feature rules. */
  protected abstract readonly features: FeatureRunner;
  private made: Parts | undefined;

  private get parts(): Parts {
    this.made ??= { datasets: new Datasets(this.features), evals: new EvalCases(this.features), values: new AttributeValues(this.features), ops: new Operations(this.features) };
    return this.made;
  }

  listEvals(pipeline: string): Promise<EvalCase[]> {
    return this.parts.evals.listEvals(pipeline);
  }

  replaceEvals(pipeline: string, cases: NewEvalCase[], now: number): Promise<EvalCase[]> {
    return this.parts.evals.replaceEvals(pipeline, cases, now);
  }

  putRecordEval(pipeline: string, recordEval: NewEvalCase & { recordId: string }, now: number): Promise<EvalCase> {
    return this.parts.evals.putRecordEval(pipeline, recordEval, now);
  }

  updateEval(pipeline: string, id: number, patch: EvalPatch, now: number): Promise<EvalCase | undefined> {
    return this.parts.evals.updateEval(pipeline, id, patch, now);
  }

  saveEvalResults(pipeline: string, results: EvalResult[], now: number): Promise<void> {
    return this.parts.evals.saveEvalResults(pipeline, results, now);
  }

  evalSummary(pipeline: string): Promise<EvalSummary> {
    return this.parts.evals.evalSummary(pipeline);
  }

  listEvalPipelines(): Promise<string[]> {
    return this.parts.evals.listEvalPipelines();
  }

  loadAttributeWork(dataset: string, field: string, derivedFields: string[], selection: AttributeWorkSelection): Promise<AttributeWorkItem[]> {
    return this.parts.values.loadWork(dataset, field, derivedFields, selection);
  }

  saveAttributeValues(dataset: string, field: string, pipeline: string, values: ComputedAttributeValue[], now: number, unchanged?: Array<{ recordId: string; sourceRev: number }>): Promise<string[]> {
    return this.parts.values.save(dataset, field, pipeline, values, now, unchanged);
  }

  getAttributeValues(dataset: string, recordId: string): Promise<Record<string, AttributeValue>> {
    return this.parts.values.recordValues(dataset, recordId);
  }

  listAttributeValues(dataset: string, recordIds: string[]): Promise<Map<string, Record<string, AttributeValue>>> {
    return this.parts.values.manyValues(dataset, recordIds);
  }

  overrideAttributeValue(dataset: string, recordId: string, field: string, override: { value: unknown; note?: string | undefined }, now: number): Promise<AttributeValue> {
    return this.parts.values.override(dataset, recordId, field, override, now);
  }

  approveAttributeValue(dataset: string, recordId: string, field: string, note: string | undefined, now: number): Promise<AttributeValue> {
    return this.parts.values.approve(dataset, recordId, field, note, now);
  }

  attributeSummary(dataset: string, field: string): Promise<AttributeSummary> {
    return this.parts.values.summary(dataset, field);
  }

  putDataset(name: string, options: { ingestPipeline?: string | undefined }, now: number): Promise<DatasetRecord> {
    return this.parts.datasets.putDataset(name, options, now);
  }

  getDataset(name: string): Promise<DatasetRecord | undefined> {
    return this.parts.datasets.getDataset(name);
  }

  listDatasets(): Promise<DatasetRecord[]> {
    return this.parts.datasets.listDatasets();
  }

  putRecords(dataset: string, records: NewDataRecord[], now: number): Promise<void> {
    return this.parts.datasets.putRecords(dataset, records, now);
  }

  getRecord(dataset: string, id: string): Promise<DataRecord | undefined> {
    return this.parts.datasets.getRecord(dataset, id);
  }

  deleteRecord(dataset: string, id: string): Promise<boolean> {
    return this.parts.datasets.deleteRecord(dataset, id);
  }

  listRecords(dataset: string, page?: RecordPage): Promise<DataRecord[]> {
    return this.parts.datasets.listRecords(dataset, page);
  }

  countRecords(dataset: string): Promise<number> {
    return this.parts.datasets.countRecords(dataset);
  }

  latestEventId(): Promise<number> {
    return this.parts.ops.latestEventId();
  }

  queueDepth(): Promise<number> {
    return this.parts.ops.queueDepth();
  }

  createToken(token: NewApiToken, now: number): Promise<ApiToken> {
    return this.parts.ops.createToken(token, now);
  }

  findToken(hash: string): Promise<ApiToken | undefined> {
    return this.parts.ops.findToken(hash);
  }

  listTokens(): Promise<ApiToken[]> {
    return this.parts.ops.listTokens();
  }

  revokeToken(id: number, now: number): Promise<ApiToken | undefined> {
    return this.parts.ops.revokeToken(id, now);
  }

  countTokens(): Promise<number> {
    return this.parts.ops.countTokens();
  }

  claimTriggerSlot(pipeline: string, slot: number, now: number): Promise<boolean> {
    return this.parts.ops.claimTriggerSlot(pipeline, slot, now);
  }
}
