import type { Ajv } from 'ajv';
import { SluiceError } from '../core/errors.js';
import { ajvPackage } from '../core/lazy-packages.js';
import type { HumanDecision, StepRecord } from '../store/store.js';

let ajv: Ajv | undefined;

/**
 * Checks the response of an approval against the JSON Schema its step asks for (`with.response`, kept in the
 * blocked step's output as `response_schema`). A missing or bad response is a VALIDATION_FAILED naming the step
 * and each field at fault; nothing is recorded, and the run keeps waiting. Rejections need no response.
 */
export function checkApprovalResponse(runId: string, step: StepRecord | undefined, d: HumanDecision): void {
  const held = step?.output as { response_schema?: Record<string, unknown> } | null | undefined;
  const schema = held?.response_schema;
  if (!step || step.status !== 'blocked' || d.decision !== 'approve' || !schema) return;
  const validate = (ajv ??= new (ajvPackage().Ajv)({ allErrors: true, strict: false })).compile(schema);
  if (validate(d.response ?? null)) return;
  const issues = (validate.errors ?? []).map((e) => {
    const at = `response${e.instancePath.replace(/\//g, '.')}`;
    const missing = e.keyword === 'required' ? `.${String((e.params as { missingProperty?: string }).missingProperty)}` : '';
    return { path: `${at}${missing}`, message: e.message ?? 'is invalid' };
  });
  const lines = issues.map((i) => `  ${i.path}: ${i.message}`).join('\n');
  throw new SluiceError('VALIDATION_FAILED', `approval ${step.name} of run ${runId}: the response does not match with.response:\n${lines}`, { details: issues, retryable: false });
}
