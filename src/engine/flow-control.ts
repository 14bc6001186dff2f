import { errorCodeOf, SluiceError } from '../core/errors.js';
import { renderTemplate } from '../core/expressions.js';
import type { FlowControl, FlowRequest, FlowRuleName } from '../core/flow-control.js';
import type { CreateRunRequest, CreatedRuns, RunEvent, StoredPipeline } from '../store/store.js';
import type { FlowPort } from '../store/flow/flow-port.js';

// The engine's part of flow control: it renders each rule's key for a run request (the store decides), and it
// starts the runs a singleton queue held once the run they wait for has ended.

/** Rule name (as written) and its normalized field. */
const RULES: ReadonlyArray<[FlowRuleName, keyof FlowControl]> = [
  ['singleton', 'singleton'],
  ['debounce', 'debounce'],
  ['rate_limit', 'rateLimit'],
  ['throttle', 'throttle'],
];

/**
 * Sets `flow` on each request of a pipeline that has flow rules: the rules and their keys rendered from the run's
 * `input` and `run` (`pipeline`, `version`, `attempt` = 1). A key that renders to a string is used as it is, other
 * values as their JSON, undefined as ''. Throws EXPRESSION_FAILED naming the rule's key and the pipeline.
 */
export async function renderFlowKeys(stored: StoredPipeline, requests: CreateRunRequest[]): Promise<void> {
  const rules = stored.definition.flow;
  if (!rules) return;
  for (const req of requests) {
    const keys: FlowRequest['keys'] = {};
    for (const [name, field] of RULES) {
      const rule = rules[field];
      if (!rule) continue;
      keys[name] = rule.key === null ? '' : await renderKey(stored, req, name, rule.key);
    }
    req.flow = { rules, keys };
  }
}

async function renderKey(stored: StoredPipeline, req: CreateRunRequest, rule: FlowRuleName, key: string): Promise<string> {
  const ctx = { input: req.input, steps: {}, run: { id: req.id ?? '', attempt: 1, pipeline: stored.name, version: stored.version }, secrets: {} };
  let value: unknown;
  try {
    value = await renderTemplate(key, ctx);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new SluiceError('EXPRESSION_FAILED', `${rule}.key of pipeline ${stored.name} failed to render for this input: ${why}`, { retryable: false, cause: err, details: { field: `${rule}.key` } });
  }
  return typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value);
}

/**
 * Tries of a start whose debounce `merge` raced another start of its bucket. Between tries it waits a random
 * 0-20 ms, so two processes merging into one bucket in lockstep do not keep invalidating each other's merge.
 */
const MERGE_TRIES = 50;
const MERGE_BACKOFF_MS = 20;

/**
 * Creates the runs of `requests` (with `create`, the store's createRuns) under the pipeline's flow rules: renders
 * their keys, and for a debounce with `merge` computes each request's merged input from the pending run's input,
 * trying again (up to 50 times, after a short random wait) when another start changed that input meanwhile. Requests that merge are created one
 * per transaction, so each sees the input the one before it left.
 */
export async function createRunsUnderFlow(stored: StoredPipeline, requests: CreateRunRequest[], store: FlowPort, create: (requests: CreateRunRequest[]) => Promise<CreatedRuns>): Promise<CreatedRuns> {
  if (!stored.definition.flow) return create(requests);
  await renderFlowKeys(stored, requests);
  if (!stored.definition.flow.debounce?.merge) return create(requests);
  const out: CreatedRuns = { runs: [], claimed: { attempts: [], events: [] } };
  for (const req of requests) {
    const one = await createMerged(stored, req, store, create);
    out.runs.push(...one.runs);
    out.claimed.attempts.push(...one.claimed.attempts);
    out.claimed.events.push(...one.claimed.events);
  }
  return out;
}

async function createMerged(stored: StoredPipeline, req: CreateRunRequest, store: FlowPort, create: (requests: CreateRunRequest[]) => Promise<CreatedRuns>): Promise<CreatedRuns> {
  for (let attempt = 1; ; attempt++) {
    const pending = await store.pendingDebounce(stored.name, req.flow!.keys.debounce ?? '');
    if (pending) req.flow!.merged = { runId: pending.runId, previous: pending.input, input: await renderMerge(stored, req, pending.input) };
    else delete req.flow!.merged;
    try {
      return await create([req]);
    } catch (err) {
      if (errorCodeOf(err) !== 'FLOW_CONFLICT' || attempt >= MERGE_TRIES) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.random() * MERGE_BACKOFF_MS));
  }
}

async function renderMerge(stored: StoredPipeline, req: CreateRunRequest, previous: unknown): Promise<unknown> {
  const ctx = { input: req.input, previous, steps: {}, run: { id: '', attempt: 1, pipeline: stored.name, version: stored.version }, secrets: {} };
  try {
    return await renderTemplate(stored.definition.flow!.debounce!.merge!, ctx);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new SluiceError('EXPRESSION_FAILED', `debounce.merge of pipeline ${stored.name} failed to render for this input: ${why}`, { retryable: false, cause: err, details: { field: 'debounce.merge' } });
  }
}

const RUN_ENDS = new Set(['run.succeeded', 'run.failed', 'run.cancelled']);

/**
 * Starts the runs a singleton queue held, when a run ends in this process (the process that ends a run sees its
 * events). One release at a time; ends seen meanwhile cause one more.
 */
export class HeldRunReleaser {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly store: FlowPort,
    private readonly now: () => number,
    private readonly released: () => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Listener of the engine's event batches. */
  onEvents(events: readonly RunEvent[]): void {
    if (!events.some((e) => RUN_ENDS.has(e.type))) return;
    this.release();
  }

  /** Releases now (or once the release in flight ends); resolves when done. */
  release(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => (this.running = null));
    return this.running;
  }

  /** Resolves once no release is in flight (the engine waits for it before closing its store). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private async loop(): Promise<void> {
    const store = this.store;
    do {
      this.again = false;
      try {
        if ((await store.releaseHeldRuns(this.now())).length > 0) this.released();
      } catch (err) {
        this.onError(err);
      }
    } while (this.again);
  }
}
