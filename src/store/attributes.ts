/**
 * Derived values of attribute pipelines: per record and field, the value with its provenance (PRODUCT.md
 * "Attribute pipelines"), written once for both backends in features/attribute-values.ts.
 */

/** proposed: written by a run. approved: a person confirmed it. overridden: a person set it; no run replaces it. */
export type AttributeStatus = 'proposed' | 'approved' | 'overridden';

export interface AttributeValue {
  value: unknown;
  /** 0..1 when the step reported one. */
  confidence: number | null;
  justification: string | null;
  /** sha256 of the stable JSON of the source fields, the step settings and the version that made the value. */
  inputHash: string | null;
  pipeline: string | null;
  pipelineVersion: number | null;
  runId: string | null;
  status: AttributeStatus;
  /** What the person who overrode or approved the value wrote. */
  note: string | null;
  updatedAt: number;
}

/** A value a run computed for one record. */
export interface ComputedAttributeValue {
  recordId: string;
  value: unknown;
  confidence: number | null;
  justification: string | null;
  inputHash: string;
  pipelineVersion: number;
  runId: string | null;
  /** The rev of the record it was computed from. */
  sourceRev: number | null;
}

/** A record as an attribute run sees it. */
export interface AttributeWorkItem {
  id: string;
  /** Changes with every write of the record (see {@link AttributeWorkSelection}'s `changedOnly`). */
  rev: number;
  data: Record<string, unknown>;
  /** Values of the requested derived fields (other pipelines' targets) that the record has. */
  derived: Record<string, unknown>;
  /** The stored value of the field being computed, if any. */
  current: AttributeValue | null;
}

/**
 * Which records to load: a page in id order, or exactly these ids (missing ones are left out). With
 * `changedOnly`, the store leaves out records whose value was computed by that pipeline version from the
 * record's current rev, and overridden ones: what a run would skip anyway, without reading it.
 */
export type AttributeWorkSelection = ({ after?: string | undefined; limit: number } | { ids: string[] }) & { changedOnly?: { version: number } };

export interface AttributeSummary {
  values: number;
  /** Mean confidence of the values that have one; null when none does. */
  avgConfidence: number | null;
  byStatus: Record<AttributeStatus, number>;
}

export interface AttributeValueStore {
  /** Records of `dataset` with the current value of `field` and the values of `derivedFields`. */
  loadAttributeWork(dataset: string, field: string, derivedFields: string[], selection: AttributeWorkSelection): Promise<AttributeWorkItem[]>;
  /**
   * Stores computed values as `proposed` in one transaction; a value whose row is `overridden` is left as it
   * is, and an approved value computed again unchanged stays approved. `unchanged` are values found current
   * by their input hash although their record was written since: only their source rev is updated. Returns
   * the ids whose row was written.
   */
  saveAttributeValues(dataset: string, field: string, pipeline: string, values: ComputedAttributeValue[], now: number, unchanged?: Array<{ recordId: string; sourceRev: number }>): Promise<string[]>;
  /** Every derived value of one record, by field. */
  getAttributeValues(dataset: string, recordId: string): Promise<Record<string, AttributeValue>>;
  /** Derived values of many records: record id -> field -> value (records without values are absent). */
  listAttributeValues(dataset: string, recordIds: string[]): Promise<Map<string, Record<string, AttributeValue>>>;
  /**
   * Sets a value by hand (status `overridden`, the note kept; what a pipeline said of the value it replaces
   * is cleared). RECORD_NOT_FOUND when the record does not exist.
   */
  overrideAttributeValue(dataset: string, recordId: string, field: string, override: { value: unknown; note?: string | undefined }, now: number): Promise<AttributeValue>;
  /** Marks a proposed value approved (an overridden one stays overridden). VALUE_NOT_FOUND when there is none. */
  approveAttributeValue(dataset: string, recordId: string, field: string, note: string | undefined, now: number): Promise<AttributeValue>;
  attributeSummary(dataset: string, field: string): Promise<AttributeSummary>;
}
