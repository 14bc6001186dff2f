/**
 * `/metrics` of a real server (listening on 127.0.0.1, scraped with fetch): series of every registered pipeline
 * from the first scrape, runs and steps by pipeline, step and status, run and step duration histograms, queue
 * depth and age of the oldest queued attempt per pipeline, HTTP durations by route pattern, process metrics, and
 * label sets bounded (pipelines beyond the cap are counted as `other`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { normalizePipeline } from '../../src/core/validate.js';
import { startHarness, type Harness } from './server-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** The value of one series in exposition text, or undefined when the series is absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function register(h: Harness, name: string, steps: Record<string, unknown>): Promise<void> {
  await h.engine.registerPipeline(normalizePipeline({ name, steps }, { stepTypes: h.engine.steps }));
}

describe('/metrics', () => {
  it('has every series of a registered pipeline from the start, then counts runs, steps, queue and HTTP', async () => {
    h = await startHarness({ ok: () => 'done', boom: () => { throw new Error('boom'); } }, { worker: false, webRoot: false, metrics: { maxPipelines: 3 } });
    await register(h, 'good', { a: { uses: 'function', with: { name: 'ok' } }, b: { uses: 'function', needs: ['a'], with: { name: 'ok' } } });
    await register(h, 'bad', { x: { uses: 'function', with: { name: 'boom' } } });
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const scrape = async () => {
      const res = await fetch(`${address}/metrics`);
      expect(res.status).toBe(200);
      return res.text();
    };

    const first = await scrape();
    expect(value(first, 'sluice_runs_total{pipeline="good",status="succeeded"}')).toBe(0);
    expect(value(first, 'sluice_runs_total{pipeline="bad",status="failed"}')).toBe(0);
    expect(value(first, 'sluice_steps_total{pipeline="good",step="b",status="failed"}')).toBe(0);
    expect(value(first, 'sluice_run_duration_seconds_count{pipeline="good",status="succeeded"}')).toBe(0);
    expect(value(first, 'sluice_step_duration_seconds_count{pipeline="bad",step="x",status="failed"}')).toBe(0);
    expect(value(first, 'sluice_queue_depth{pipeline="good"}')).toBe(0);
    expect(value(first, 'sluice_queue_oldest_age_seconds{pipeline="good"}')).toBe(0);
    expect(value(first, 'sluice_lease_expiries_total{pipeline="bad"}')).toBe(0);
    expect(first).toContain('process_cpu_user_seconds_total');
    expect(first).toContain('nodejs_eventloop_lag_seconds');

    // Queued while no worker runs: the queue has depth, and its oldest attempt an age (the clock moves on).
    for (let i = 0; i < 2; i += 1) {
      const res = await fetch(`${address}/api/pipelines/good/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(201);
    }
    const bad = await h.engine.startRun('bad');
    await new Promise((r) => setTimeout(r, 20));
    const queued = await scrape();
    expect(value(queued, 'sluice_queue_depth{pipeline="good"}')).toBe(2);
    expect(value(queued, 'sluice_queue_depth{pipeline="bad"}')).toBe(1);
    expect(value(queued, 'sluice_queue_oldest_age_seconds{pipeline="good"}')).toBeGreaterThan(0);

    h.engine.startWorker();
    await h.engine.waitForRun(bad.run.id);
    const runs = (await h.engine.store.listRuns({ pipeline: 'good' })).map((r) => r.id);
    for (const id of runs) await h.engine.waitForRun(id);
    const done = await scrape();
    expect(value(done, 'sluice_runs_total{pipeline="good",status="succeeded"}')).toBe(2);
    expect(value(done, 'sluice_runs_total{pipeline="bad",status="failed"}')).toBe(1);
    expect(value(done, 'sluice_steps_total{pipeline="good",step="b",status="succeeded"}')).toBe(2);
    expect(value(done, 'sluice_steps_total{pipeline="bad",step="x",status="failed"}')).toBe(1);
    expect(value(done, 'sluice_run_duration_seconds_count{pipeline="good",status="succeeded"}')).toBe(2);
    expect(value(done, 'sluice_step_duration_seconds_count{pipeline="bad",step="x",status="failed"}')).toBe(1);
    expect(value(done, 'sluice_queue_depth{pipeline="good"}')).toBe(0);
    // The route pattern, never the URL.
    expect(value(done, 'sluice_http_request_duration_seconds_count{method="POST",route="/api/pipelines/:name/runs",status_code="201"}')).toBe(2);
    expect(value(done, 'sluice_http_request_duration_seconds_count{method="GET",route="/metrics",status_code="200"}')).toBeGreaterThanOrEqual(2);

    // Label sets are bounded: a fourth and fifth pipeline count as `other`.
    await register(h, 'p3', { s: { uses: 'function', with: { name: 'ok' } } });
    await register(h, 'p4', { s: { uses: 'function', with: { name: 'ok' } } });
    await register(h, 'p5', { s: { uses: 'function', with: { name: 'ok' } } });
    const capped = await scrape();
    expect(value(capped, 'sluice_runs_total{pipeline="p3",status="succeeded"}')).toBe(0);
    expect(value(capped, 'sluice_runs_total{pipeline="other",status="succeeded"}')).toBe(0);
    expect(capped).not.toContain('pipeline="p4"');
    expect(capped).not.toContain('pipeline="p5"');
  }, 60_000);
});
