/** Severity of a failed check; decides what a gate does. */
export type Severity = 'low' | 'medium' | 'high' | 'critical';

export interface Failure {
  kind: 'schema' | 'rule';
  name: string;
  severity: Severity;
  message: string;
}

/** When a gate blocks for a human or retries; the defaults are the supervised-jobs rules. */
export interface DecisionRules {
  /** Any critical failure blocks. Default: true. */
  block_on_critical: boolean;
  /** More failures than this blocks. Default: 5. */
  max_failures: number;
  /** Any high failure retries the upstream step (blocks when no retry is configured). Default: true. */
  retry_on_high: boolean;
}

export const DEFAULT_DECISION_RULES: DecisionRules = { block_on_critical: true, max_failures: 5, retry_on_high: true };

export interface Verdict {
  decision: 'proceed' | 'retry' | 'block';
  reason: string;
}

/**
 * The gate's decision rule: critical -> block; more than `max_failures` failures -> block; any high
 * -> retry (or block without a step to retry); otherwise proceed (low and medium failures are reported,
 * not acted on).
 */
export function decide(failures: Failure[], rules: DecisionRules, canRetry: boolean): Verdict {
  const count = (s: Severity) => failures.filter((f) => f.severity === s).length;
  if (rules.block_on_critical && count('critical') > 0) return { decision: 'block', reason: `${count('critical')} critical failure(s)` };
  if (failures.length > rules.max_failures) return { decision: 'block', reason: `${failures.length} failures (more than ${rules.max_failures})` };
  if (rules.retry_on_high && count('high') > 0) {
    const reason = `${count('high')} high failure(s)`;
    return canRetry ? { decision: 'retry', reason } : { decision: 'block', reason: `${reason} and no step to retry` };
  }
  return { decision: 'proceed', reason: failures.length === 0 ? 'all checks passed' : `${failures.length} low or medium failure(s)` };
}
