import { SluiceError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import type { EvalCase, EvalPatch, NewEvalCase } from '../store/evals.js';
import type { StoredPipeline } from '../store/store.js';

/**
 * Replaces the eval cases of a pipeline (all or nothing). Record cases need an attribute pipeline (the record is
 * read from its dataset); VALIDATION_FAILED names the case otherwise.
 */
export async function setEvals(engine: Engine, pipelineName: string, cases: NewEvalCase[]): Promise<EvalCase[]> {
  const pipeline = await engine.requirePipeline(pipelineName);
  if (!pipeline.definition.attribute) {
    const index = cases.findIndex((c) => c.recordId !== undefined && c.recordId !== null);
    if (index >= 0) {
      const label = `eval case ${index}${typeof cases[index]!.id === 'number' ? ` (id ${cases[index]!.id})` : ''}`;
      throw new SluiceError('VALIDATION_FAILED', `${label}: pipeline ${pipeline.name} is not an attribute pipeline (it reads no dataset): give input, not record_id`, {
        details: { case: label },
      });
    }
  }
  return engine.store.replaceEvals(pipeline.name, cases, engine.clock.now());
}

/** Changes one case; `passed` is recomputed from its stored output. EVAL_NOT_FOUND when the pipeline has no such case. */
export async function patchEval(engine: Engine, pipelineName: string, id: number, patch: EvalPatch): Promise<EvalCase> {
  const pipeline = await engine.requirePipeline(pipelineName);
  const updated = await engine.store.updateEval(pipeline.name, id, patch, engine.clock.now());
  if (!updated) throw new SluiceError('EVAL_NOT_FOUND', `pipeline ${pipeline.name} has no eval case with id ${id}`);
  return updated;
}

export interface EvalFromValueRequest {
  recordId: string;
  /** Default: the pipeline's dataset. */
  dataset?: string | undefined;
  /** Default: the pipeline's target field. */
  field?: string | undefined;
  notes?: string | undefined;
}

/**
 * Makes the current value of a record's field (typically a value a person overrode) the desired output of the
 * pipeline's eval case for that record, creating the case or updating the one it has. The value is the stored
 * derived value of the field, else the field of the record's data. DATASET_NOT_FOUND, RECORD_NOT_FOUND, or
 * VALUE_NOT_FOUND when the record has no value for the field.
 */
export async function evalFromValue(engine: Engine, pipelineName: string, request: EvalFromValueRequest): Promise<EvalCase> {
  const pipeline = await engine.requirePipeline(pipelineName);
  const { dataset, field } = evalTarget(pipeline, request);
  if (!(await engine.store.getDataset(dataset))) throw new SluiceError('DATASET_NOT_FOUND', `no dataset ${dataset}`);
  const record = await engine.store.getRecord(dataset, request.recordId);
  if (!record) throw new SluiceError('RECORD_NOT_FOUND', `dataset ${dataset} has no record ${request.recordId}`);
  const derived = (await engine.store.getAttributeValues(dataset, request.recordId))[field];
  if (!derived && !Object.hasOwn(record.data, field)) {
    throw new SluiceError('VALUE_NOT_FOUND', `record ${request.recordId} of dataset ${dataset} has no value for ${field}`);
  }
  const desiredOutput = derived ? derived.value : record.data[field];
  return engine.store.putRecordEval(pipeline.name, { recordId: request.recordId, desiredOutput, notes: request.notes }, engine.clock.now());
}

function evalTarget(pipeline: StoredPipeline, request: EvalFromValueRequest): { dataset: string; field: string } {
  const attribute = pipeline.definition.attribute;
  if (!attribute) {
    throw new SluiceError('VALIDATION_FAILED', `pipeline ${pipeline.name} is not an attribute pipeline: its eval cases cannot read records`);
  }
  if (request.dataset !== undefined && request.dataset !== attribute.dataset) {
    throw new SluiceError('VALIDATION_FAILED', `pipeline ${pipeline.name} reads dataset ${attribute.dataset}, not ${request.dataset}`);
  }
  return { dataset: attribute.dataset, field: request.field ?? attribute.target };
}
