import type { Ajv } from 'ajv';
import { ajvPackage } from '../../core/lazy-packages.js';
import { evaluateCondition } from '../../core/expressions.js';
import type { ExpressionContext, JsonSchema } from '../../core/model.js';
import type { StepContext, StepType } from '../step-type.js';
import { StepDirective } from '../step-type.js';
import { decide, DEFAULT_DECISION_RULES, type DecisionRules, type Failure, type Severity } from './decide.js';
import { errorMessage, SluiceError } from '../../core/errors.js';
import { DURATION_HINT, parseDuration } from '../../core/duration.js';
import type { WaitRequest } from '../../core/waits.js';

export interface GateRule {
  name: string;
  /** JSONata over `input`, `steps`, `run`; the rule passes when it is truthy. */
  expr: string;
  /** Default: high. */
  severity?: Severity;
  message?: string;
}

export interface GateConfig {
  /** JSON Schema the checked value must match. */
  schema?: JsonSchema;
  /** What the schema checks. Default: the output of the gate's only need, or all needs' outputs by name. */
  target?: unknown;
  rules?: GateRule[];
  on_fail?: {
    /** Upstream step to run again on a retry decision, with the failures as its `feedback`. */
    retry?: string;
    /** Retries allowed per run. Default: 3. */
    budget?: number;
    /** When the budget is spent. Default: block. */
    then?: 'block' | 'fail';
  };
  /** Overrides of the decision rules. */
  decide?: Partial<DecisionRules>;
  /** How long a human has once the gate blocks. Default: no limit. */
  timeout?: string | number;
  /** What the deadline decides for a blocked gate: `reject` (default; the step fails) or `approve`. */
  on_timeout?: 'approve' | 'reject';
}

// Made at the first gate with a schema, not at import.
let ajv: Ajv | undefined;

/**
 * `gate`: a supervisor. Validates upstream outputs against a JSON Schema and rule expressions with
 * severities, then decides: proceed (the step succeeds with its report), retry (the `on_fail.retry` step
 * and everything after it run again with the failures as feedback, within a budget), or block (the run
 * waits for a human). Every decision is stored and emitted as `gate.decided`.
 */
export function createGateStep(): StepType<GateConfig> {
  return {
    type: 'gate',
    configSchema: gateConfigSchema,
    async execute(ctx, config) {
      const checked = await checkRules(ctx, config.rules ?? []);
      const failures = [...checkSchema(ctx, config), ...checked.filter((r) => !r.passed).map(toFailure)];
      const rules: DecisionRules = { ...DEFAULT_DECISION_RULES, ...config.decide };
      const verdict = decide(failures, rules, config.on_fail?.retry !== undefined);
      const decision = {
        decision: verdict.decision,
        validations: failures.filter((f) => f.kind === 'schema'),
        // Every rule checked, passed or not: the audit shows what a proceed rested on.
        rules: checked,
        reason: verdict.reason,
        ...(verdict.decision === 'retry' ? { retryStep: config.on_fail!.retry! } : {}),
      };
      const report = { decision, failures, checked: (config.rules ?? []).length };
      if (verdict.decision === 'proceed') return StepDirective.decided(report);
      const deadline = blockDeadline(ctx.step, ctx.now(), config);
      const held = deadline ? { ...report, ...deadline.detail } : report;
      if (verdict.decision === 'block') return StepDirective.block(held, deadline?.wait);
      const feedback = { gate: ctx.step, reason: verdict.reason, failures };
      return StepDirective.rewind({ to: config.on_fail!.retry!, feedback, budget: config.on_fail?.budget ?? 3, then: config.on_fail?.then ?? 'block' }, held, deadline?.wait);
    },
  };
}

function targetOf(ctx: StepContext, config: GateConfig): unknown {
  if (config.target !== undefined) return config.target;
  const names = Object.keys(ctx.steps);
  return names.length === 1 ? ctx.steps[names[0]!] : ctx.steps;
}

function checkSchema(ctx: StepContext, config: GateConfig): Failure[] {
  if (!config.schema) return [];
  const validate = (ajv ??= new (ajvPackage().Ajv)({ allErrors: true, strict: false })).compile(config.schema);
  if (validate(targetOf(ctx, config))) return [];
  return (validate.errors ?? []).map((e) => ({
    kind: 'schema' as const,
    name: e.instancePath || '/',
    severity: 'high' as const,
    message: `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`,
  }));
}

/** One rule as the gate checked it; `message` says why it failed. */
export interface RuleResult {
  name: string;
  passed: boolean;
  severity: Severity;
  message?: string;
}

async function checkRules(ctx: StepContext, rules: GateRule[]): Promise<RuleResult[]> {
  const exprCtx: ExpressionContext = { input: ctx.input, steps: ctx.steps, run: ctx.run, secrets: {} };
  const results: RuleResult[] = [];
  for (const rule of rules) {
    let passed = false;
    let message = rule.message ?? `rule ${rule.name} failed: ${rule.expr}`;
    try {
      passed = await evaluateCondition(rule.expr, exprCtx);
    } catch (err) {
      message = `rule ${rule.name} could not be evaluated: ${errorMessage(err)}`;
    }
    const severity = rule.severity ?? 'high';
    results.push(passed ? { name: rule.name, passed, severity } : { name: rule.name, passed, severity, message });
  }
  return results;
}

function toFailure(r: RuleResult): Failure {
  return { kind: 'rule', name: r.name, severity: r.severity, message: r.message ?? `rule ${r.name} failed` };
}

const severity = { enum: ['low', 'medium', 'high', 'critical'] };

const gateConfigSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    schema: { type: 'object' },
    target: {},
    rules: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'expr'],
        properties: { name: { type: 'string' }, expr: { type: 'string' }, severity, message: { type: 'string' } },
      },
    },
    on_fail: {
      type: 'object',
      additionalProperties: false,
      properties: {
        retry: { type: 'string' },
        budget: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] },
        then: { enum: ['block', 'fail'] },
      },
    },
    timeout: { type: ['string', 'number'] },
    on_timeout: { enum: ['approve', 'reject'] },
    decide: {
      type: 'object',
      additionalProperties: false,
      properties: {
        block_on_critical: { type: 'boolean' },
        max_failures: { type: 'integer', minimum: 0 },
        retry_on_high: { type: 'boolean' },
      },
    },
  },
};

/** The deadline of a human's decision on a gate that blocks (`with.timeout`), as the ledger keeps it. */
function blockDeadline(step: string, now: number, config: GateConfig): { detail: Record<string, unknown>; wait: WaitRequest } | undefined {
  if (config.timeout === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(config.timeout);
  } catch {
    throw new SluiceError('VALIDATION_FAILED', `gate ${step}: with.timeout is ${JSON.stringify(config.timeout)}; expected ${DURATION_HINT}`, { retryable: false });
  }
  const onTimeout = config.on_timeout ?? 'reject';
  const detail = { deadline: new Date(now + ms).toISOString(), on_timeout: onTimeout };
  return { detail, wait: { kind: 'approval', wakeAt: now + ms, context: { input: null, steps: {}, on_timeout: onTimeout } as WaitRequest['context'], detail } };
}
