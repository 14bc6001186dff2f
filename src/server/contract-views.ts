import type { AttributeConfig, CacheFiles, Pipeline, RetryPolicy, Step, Trigger } from '../core/model.js';
import type { StepUsage } from '../steps/step-type.js';
import type { GateDecisionRecord, PipelineStats, StatsBucket } from '../store/store.js';

/**
 * snake_case views of library shapes whose fields are camelCase in TypeScript: the normalized pipeline
 * definition, model usage, gate and human decisions, and stats. The HTTP API and the CLI's `--json` print these,
 * so both speak one casing. User data inside them (`with`, JSON Schemas, outputs) is passed through untouched.
 */

/** A normalized pipeline definition (every default filled in), keys snake_case; durations in ms (`*_ms`). */
export function definitionView(p: Pipeline): Record<string, unknown> {
  const view: Record<string, unknown> = {
    name: p.name,
    description: p.description,
    max_parallel: p.maxParallel,
    fail_fast: p.failFast,
    timeout_ms: p.timeoutMs,
    disabled: p.disabled,
    input: p.input,
    triggers: p.triggers.map(triggerView),
    steps: p.steps.map(stepDefinitionView),
  };
  if (p.attribute) view['attribute'] = attributeDefinitionView(p.attribute);
  return view;
}

function triggerView(t: Trigger): Record<string, unknown> {
  return t.kind === 'cron' ? { kind: t.kind, cron: t.cron, timezone: t.timezone } : { kind: t.kind, event: t.event };
}

/** One normalized step of a definition. */
export function stepDefinitionView(s: Step): Record<string, unknown> {
  const view: Record<string, unknown> = {
    name: s.name,
    uses: s.uses,
    needs: s.needs,
    with: s.with,
    if: s.if,
    retry: retryView(s.retry),
    timeout_ms: s.timeoutMs,
    on_failure: s.onFailure,
    cache: s.cache,
    disabled: s.disabled,
    priority: s.priority,
    concurrency_key: s.concurrencyKey,
    concurrency_limit: s.concurrencyLimit,
    output: s.output,
  };
  if (s.cacheFiles) view['cache_files'] = cacheFilesView(s.cacheFiles);
  return view;
}

function retryView(r: RetryPolicy): Record<string, unknown> {
  return { attempts: r.attempts, backoff: r.backoff, delay_ms: r.delayMs, max_delay_ms: r.maxDelayMs, jitter: r.jitter };
}

function cacheFilesView(c: CacheFiles): Record<string, unknown> {
  return { inputs: c.inputs, outputs: c.outputs, key: c.key, outputs_unchanged: c.outputsUnchanged };
}

function attributeDefinitionView(a: AttributeConfig): Record<string, unknown> {
  return {
    dataset: a.dataset,
    target: a.target,
    fields: a.fields,
    batch_size: a.batchSize,
    on_record_failure: a.onRecordFailure,
    concurrency: a.concurrency,
    steps: a.steps.map(stepDefinitionView),
  };
}

/** Model usage of an attempt (or a simulated step): tokens and cost; null when the step reported none. */
export function usageView(u: StepUsage | null | undefined): Record<string, unknown> | null {
  if (!u) return null;
  const view: Record<string, unknown> = {};
  if (u.model !== undefined) view['model'] = u.model;
  if (u.tokensIn !== undefined) view['tokens_in'] = u.tokensIn;
  if (u.tokensOut !== undefined) view['tokens_out'] = u.tokensOut;
  if (u.cost !== undefined) view['cost'] = u.cost;
  return view;
}

/** A row of the decisions audit: a gate's verdict (with its rules) or a person's approval or rejection. */
export function decisionView(d: GateDecisionRecord): Record<string, unknown> {
  return {
    id: d.id,
    run_id: d.runId,
    step: d.step,
    attempt: d.attempt,
    kind: d.kind,
    decision: d.decision,
    validations: d.validations,
    rules: d.rules,
    retry_step: d.retryStep ?? null,
    reason: d.reason ?? null,
    comment: d.comment ?? null,
    by: d.by ?? null,
    budget_left: d.budgetLeft,
    at: d.at,
  };
}

/** Stats of a pipeline over a window: counts by status, durations, tokens and cost, per pipeline and per step. */
export function statsView(s: PipelineStats): Record<string, unknown> {
  const view: Record<string, unknown> = {
    pipeline: s.pipeline,
    since: s.since,
    runs: { by_status: s.runs.byStatus, duration: s.runs.duration },
    steps: s.steps.map((st) => ({
      name: st.name,
      by_status: st.byStatus,
      duration: st.duration,
      attempts: st.attempts,
      tokens_in: st.tokensIn,
      tokens_out: st.tokensOut,
      cost: st.cost,
    })),
    tokens_in: s.tokensIn,
    tokens_out: s.tokensOut,
    cost: s.cost,
  };
  if (s.series) view['series'] = s.series.map(bucketView);
  return view;
}

function bucketView(b: StatsBucket): Record<string, unknown> {
  return { start: b.start, end: b.end, by_status: b.byStatus, duration: b.duration, tokens_in: b.tokensIn, tokens_out: b.tokensOut, cost: b.cost };
}
