import type { RunEvent, Store } from '../store/store.js';

/** Upper bounds (seconds) of the step duration histogram. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Prometheus metrics of a server, counted from the run events it sees (its own and, through polling, those of
 * other processes), plus gauges read from the store at scrape time. Counters start at zero with the process.
 */
export class Metrics {
  private readonly runs = new Map<string, number>();
  private readonly steps = new Map<string, number>();
  private readonly buckets = new Array<number>(BUCKETS.length).fill(0);
  private durationCount = 0;
  private durationSum = 0;
  private leaseExpiries = 0;
  private httpRequests = new Map<string, number>();

  observe(e: RunEvent): void {
    const [kind, status] = e.type.split('.') as [string, string];
    if (kind === 'run') this.runs.set(status, (this.runs.get(status) ?? 0) + 1);
    if (kind !== 'step') return;
    this.steps.set(status, (this.steps.get(status) ?? 0) + 1);
    if (status === 'queued' && e.data?.['reason'] === 'lease expired') this.leaseExpiries += 1;
    const ms = e.data?.['duration_ms'];
    if (typeof ms === 'number' && (status === 'succeeded' || status === 'failed' || status === 'retrying')) this.observeDuration(ms / 1000);
  }

  countRequest(statusCode: number): void {
    const key = `${Math.floor(statusCode / 100)}xx`;
    this.httpRequests.set(key, (this.httpRequests.get(key) ?? 0) + 1);
  }

  private observeDuration(seconds: number): void {
    this.durationCount += 1;
    this.durationSum += seconds;
    BUCKETS.forEach((le, i) => {
      if (seconds <= le) this.buckets[i]! += 1;
    });
  }

  /** The exposition text (format 0.0.4). */
  async render(store: Store): Promise<string> {
    const lines: string[] = [];
    counter(lines, 'sluice_runs_total', 'Run transitions seen, by new status.', 'status', this.runs);
    counter(lines, 'sluice_steps_total', 'Step transitions seen, by new status.', 'status', this.steps);
    lines.push('# HELP sluice_step_duration_seconds Processing time of finished attempts.', '# TYPE sluice_step_duration_seconds histogram');
    BUCKETS.forEach((le, i) => lines.push(`sluice_step_duration_seconds_bucket{le="${le}"} ${this.buckets[i]}`));
    lines.push(`sluice_step_duration_seconds_bucket{le="+Inf"} ${this.durationCount}`);
    lines.push(`sluice_step_duration_seconds_sum ${this.durationSum}`, `sluice_step_duration_seconds_count ${this.durationCount}`);
    lines.push('# HELP sluice_lease_expiries_total Attempts re-queued because their lease expired.', '# TYPE sluice_lease_expiries_total counter');
    lines.push(`sluice_lease_expiries_total ${this.leaseExpiries}`);
    counter(lines, 'sluice_http_requests_total', 'HTTP requests answered, by status class.', 'code', this.httpRequests);
    if (store.queueDepth) {
      lines.push('# HELP sluice_queue_depth Attempts queued in the store.', '# TYPE sluice_queue_depth gauge');
      lines.push(`sluice_queue_depth ${await store.queueDepth()}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

function counter(lines: string[], name: string, help: string, label: string, values: Map<string, number>): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
  for (const [value, n] of [...values].sort()) lines.push(`${name}{${label}="${value}"} ${n}`);
}
