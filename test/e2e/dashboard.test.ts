import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, http, launchBrowser, screenshot, startServe, webBuilt, wideDag, type Served } from '../support/browser.js';
import { killSpawned, runCli } from '../support/cli.js';

// The dashboard in a real Chromium against a real `sluice serve`. Without a Chromium the suite is skipped
// (never failed): install one with `apt-get install -y chromium` or point SLUICE_CHROMIUM at one.
const chromiumPath = findChromium();
if (!chromiumPath) console.warn('dashboard browser tests skipped: no Chromium found (apt-get install -y chromium, or set SLUICE_CHROMIUM)');
const suite = chromiumPath ? describe : describe.skip;

export const DEMO_YAML = `
name: demo
description: Fetch, parse and publish a report
steps:
  fetch: { uses: command, with: { run: "sleep 0.4 && echo fetched" } }
  parse: { needs: [fetch], uses: code, with: { code: "return { rows: 3, source: 'fetch' }" } }
  score: { needs: [fetch], uses: command, with: { run: "sleep 0.3 && echo scored" } }
  publish: { needs: [parse, score], uses: code, with: { code: "return { published: true }" } }
`;

const GATED_YAML = `
name: gated
description: Drafts a release and waits for a person to approve it
steps:
  draft: { uses: code, with: { code: "return { text: 'release notes' }" } }
  review: { needs: [draft], uses: approval, with: { message: Ship these notes? } }
  ship: { needs: [review], uses: code, with: { code: "return { shipped: true }" } }
`;

const CATEGORY_YAML = `
name: product-category
description: Sorts products into categories from their titles
dataset: products
target: category
source: { fields: [title] }
steps:
  classify:
    uses: code
    with:
      code: "return { value: /lamp/i.test($json.title) ? 'lighting' : 'other', confidence: 0.8, justification: 'title says ' + $json.title }"
`;

const yaml = 'application/yaml';

/** An attribute pipeline over a dataset of two products, its values computed. */
async function seedProducts(base: string, token?: string): Promise<void> {
  await http(base, 'PUT', '/api/datasets/products', {}, token);
  await http(base, 'PUT', '/api/pipelines/product-category', CATEGORY_YAML, token, yaml);
  await http(base, 'POST', '/api/datasets/products/records:bulk', [{ id: 'p1', title: 'Desk lamp', price: 30 }, { id: 'p2', title: 'Chair', price: 80 }], token);
  for (let i = 0; i < 200; i++) {
    const page = await http(base, 'GET', '/api/datasets/products/records', undefined, token);
    if (page.records.every((r: { attributes?: Record<string, unknown> }) => r.attributes?.['category'])) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the values of product-category were not computed');
}

async function stepStatus(page: Page, step: string): Promise<string | null> {
  return page.locator(`.dag-label[data-step="${step}"]`).getAttribute('data-status');
}

suite('dashboard in Chromium (admin, no auth)', () => {
  let served: Served;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    if (!webBuilt()) throw new Error('dist/web is missing: run npm run build:web (npm test does) before the dashboard tests');
    served = await startServe();
    await http(served.url, 'PUT', '/api/pipelines/demo', DEMO_YAML, undefined, yaml);
    await http(served.url, 'PUT', '/api/pipelines/gated', GATED_YAML, undefined, yaml);
    browser = await launchBrowser(chromiumPath!);
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    await killSpawned();
  });

  it('serves the app with SPA fallback, hashed assets cached, API 404s kept', async () => {
    const deep = await fetch(`${served.url}/runs/some-run`);
    expect(deep.status).toBe(200);
    expect(deep.headers.get('content-type')).toContain('text/html');
    const html = await deep.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const js = await fetch(`${served.url}${asset}`);
    expect(js.headers.get('content-type')).toContain('text/javascript');
    expect(js.headers.get('cache-control')).toContain('immutable');
    const api = await fetch(`${served.url}/api/nothing`);
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe('ROUTE_NOT_FOUND');
    expect((await fetch(`${served.url}/assets/missing.js`)).status).toBe(404);
  });

  it('lists pipelines, starts a run from the UI and turns its steps green live', async () => {
    await page.goto(`${served.url}/`);
    await page.locator('tr[data-pipeline="demo"]').waitFor();
    await expect(page.locator('tr[data-pipeline="gated"]').textContent()).resolves.toContain('never run');
    await screenshot(page, 'pipelines-empty-runs');

    await page.locator('a', { hasText: 'demo' }).first().click();
    await page.locator('.dag-label[data-step="publish"]').waitFor();
    await page.evaluate('window.noReload = true');
    await page.getByTestId('start-run').click();
    await page.getByTestId('start-run-submit').click();
    await page.waitForURL(/\/runs\/[^/]+$/);
    // The page is never reloaded: statuses arrive over the live stream.
    await page.locator('.dag-label[data-step="fetch"][data-status="running"], .dag-label[data-step="fetch"][data-status="succeeded"]').waitFor({ timeout: 10_000 });
    for (const step of ['fetch', 'parse', 'score', 'publish']) {
      await page.locator(`.dag-label[data-step="${step}"][data-status="succeeded"]`).waitFor({ timeout: 15_000 });
    }
    expect(await page.evaluate('window.noReload')).toBe(true);
    await page.locator('h1 .badge', { hasText: 'succeeded' }).waitFor();
    await page.locator('.tl-row', { hasText: 'fetch' }).click();
    await page.getByTestId('logs').waitFor();
    expect(await page.getByTestId('logs').textContent()).toContain('fetched');
    // Why the step ran: the store has no earlier result of it.
    expect(await page.getByTestId('cache-reason').textContent()).toBe('Cache: ran: first run (no earlier result)');
    await screenshot(page, 'run-succeeded');

    await page.goto(`${served.url}/pipelines/demo?tab=stats`);
    await page.getByTestId('charts').waitFor();
    await screenshot(page, 'pipeline-stats');
    await page.goto(`${served.url}/`);
    await page.locator('tr[data-pipeline="demo"] .badge', { hasText: 'succeeded' }).waitFor();
    await screenshot(page, 'pipelines');
  });

  it('loads the pipelines page with one request and follows new runs row by row', async () => {
    const requests: string[] = [];
    const onRequest = (r: { url(): string }) => {
      const url = new URL(r.url());
      if (url.pathname.startsWith('/api/') && url.pathname !== '/api/stream') requests.push(`${url.pathname}${url.search}`);
    };
    page.on('request', onRequest);
    try {
      // A pipeline of its own, so the runs of the other tests stay as they are.
      await http(served.url, 'PUT', '/api/pipelines/watched', GATED_YAML.replace('name: gated', 'name: watched'), undefined, yaml);
      await page.goto(`${served.url}/`);
      await page.locator('tr[data-pipeline="watched"]').waitFor();
      expect(requests.filter((r) => r.startsWith('/api/pipelines') || r.startsWith('/api/runs'))).toEqual(['/api/pipelines?summary=true']);
      await page.evaluate('window.noReload = true');
      requests.length = 0;
      const run = await http(served.url, 'POST', '/api/pipelines/watched/runs', { input: {} });
      // The new run shows up from the event stream; only its pipeline's row is asked for again.
      await page.locator(`tr[data-pipeline="watched"] a[href="/runs/${run.id}"]`).waitFor({ timeout: 15_000 });
      await page.locator('tr[data-pipeline="watched"] .badge', { hasText: 'waiting' }).waitFor({ timeout: 15_000 });
      expect(await page.evaluate('window.noReload')).toBe(true);
      expect(requests.length).toBeGreaterThan(0);
      expect(requests.every((r) => r === '/api/pipelines?summary=true&name=watched')).toBe(true);
    } finally {
      page.off('request', onRequest);
    }
  });

  it('approves a blocked step with a comment and sees the run finish', async () => {
    const run = await http(served.url, 'POST', '/api/pipelines/gated/runs', { input: {} });
    await page.goto(`${served.url}/runs/${run.id}`);
    await page.locator('.dag-label[data-step="review"][data-status="blocked"]').waitFor({ timeout: 15_000 });
    await page.locator('.react-flow__node', { hasText: 'review' }).click();
    await page.getByTestId('approval').waitFor();
    await screenshot(page, 'run-blocked');
    await page.getByTestId('approval-comment').fill('looks right');
    await page.getByTestId('approve').click();
    await page.locator('.dag-label[data-step="ship"][data-status="succeeded"]').waitFor({ timeout: 15_000 });
    await page.locator('h1 .badge', { hasText: 'succeeded' }).waitFor();
    expect(await stepStatus(page, 'review')).toBe('succeeded');
    await page.getByTestId('decisions').waitFor();
    expect(await page.getByTestId('decisions').textContent()).toContain('looks right');
    await screenshot(page, 'run-approved');
  });

  it('shows a run held by a singleton queue as waiting for the active run', async () => {
    const solo = `name: solo\nsingleton: { mode: queue }\nsteps:\n  review: { uses: approval }\n`;
    await http(served.url, 'PUT', '/api/pipelines/solo', solo, undefined, yaml);
    const active = await http(served.url, 'POST', '/api/pipelines/solo/runs', { input: {} });
    const held = await http(served.url, 'POST', '/api/pipelines/solo/runs', { input: {} });
    await page.goto(`${served.url}/runs/${held.id}`);
    await page.locator('h1 .badge', { hasText: 'queued' }).waitFor();
    await page.getByTestId('run-flow').waitFor({ timeout: 5_000 });
    expect(await page.getByTestId('run-flow').textContent()).toBe(`waits for run ${active.id} to end`);
  });

  it('validates a definition, marks the line an issue names, and saves a new version', async () => {
    await page.goto(`${served.url}/pipelines/demo?tab=definition`);
    const editor = page.getByTestId('definition');
    await editor.waitFor();
    const text = await editor.inputValue();
    await editor.fill(text.replace('uses: code', 'uses: no-such-step'));
    await page.getByTestId('validate').click();
    await page.locator('.line-note').first().waitFor();
    const note = page.locator('.line-note').first();
    expect(await note.textContent()).toMatch(/no-such-step|unknown/i);
    const line = Number(await note.getAttribute('data-line'));
    expect(text.split('\n')[line - 1]).toContain('uses: code');
    await screenshot(page, 'pipeline-definition-issues');
    await editor.fill(text.replace('Fetch, parse and publish a report', 'Fetch, parse and publish the daily report'));
    await page.getByTestId('save-definition').click();
    await page.locator('.ok', { hasText: 'Saved as version 2' }).waitFor();
    await page.locator('h1', { hasText: 'v2' }).waitFor();
    await page.locator('[data-tab="versions"]').click();
    await page.getByTestId('versions').waitFor();
    expect(await page.locator('[data-testid="versions"] tbody tr').count()).toBe(2);
  });

  it('overrides a derived value, adds it as an eval, and marks an edited eval failing', async () => {
    await seedProducts(served.url);
    await page.goto(`${served.url}/datasets`);
    await page.getByTestId('datasets').waitFor();
    await screenshot(page, 'datasets');
    await page.locator('a', { hasText: 'products' }).click();
    await page.locator('tr[data-record="p2"]').click();
    const card = page.locator('.value-card[data-field="category"]');
    await card.waitFor();
    expect(await card.textContent()).toContain('proposed');
    expect(await card.textContent()).toContain('title says Chair');
    await card.getByTestId('override').click();
    await card.getByTestId('override-value').fill('"seating"');
    await card.getByTestId('override-save').click();
    await card.locator('.badge', { hasText: 'overridden' }).waitFor();
    await card.getByTestId('add-eval').click();
    await card.locator('.ok', { hasText: 'Added as eval' }).waitFor();
    await screenshot(page, 'dataset-record');

    // A case that passes, then an edit of its desired output that makes it fail at once.
    await page.goto(`${served.url}/pipelines/product-category?tab=evals`);
    await page.getByTestId('evals').waitFor();
    expect(await page.locator('[data-eval]').count()).toBe(1);
    const cases = await http(served.url, 'GET', '/api/pipelines/product-category/evals');
    await http(served.url, 'PUT', '/api/pipelines/product-category/evals', {
      evals: [...cases.evals.map((e: { id: number; record_id: string; desired_output: unknown }) => ({ id: e.id, record_id: e.record_id, desired_output: e.desired_output })), { record_id: 'p1', desired_output: 'lighting' }],
    });
    await page.reload();
    await page.getByTestId('run-evals').click();
    await page.locator('[data-eval][data-passed="true"]').waitFor();
    const p1 = page.locator('tr[data-eval]', { hasText: 'p1' });
    expect(await p1.getAttribute('data-passed')).toBe('true');
    expect(await page.locator('tr[data-eval]', { hasText: 'p2' }).getAttribute('data-passed')).toBe('false');
    await p1.getByTestId('desired-output').fill('"outdoor"');
    await p1.getByTestId('desired-output').press('Enter');
    await page.locator('tr.failing-row[data-eval]', { hasText: 'p1' }).waitFor();
    expect(await page.getByTestId('eval-summary').textContent()).toContain('2 failed');
    await screenshot(page, 'pipeline-evals');

    await page.goto(`${served.url}/`);
    await page.locator('tr[data-pipeline="product-category"] .badge.failing').waitFor();
    await screenshot(page, 'pipelines-failing-evals');
    await page.goto(`${served.url}/pipelines/product-category`);
    // The run of an attribute pipeline is one step over the dataset; its state colors the declared steps.
    await page.locator('.dag-label[data-step="classify"][data-status="succeeded"]').waitFor();
    await screenshot(page, 'pipeline-graph');
    await page.locator('[data-tab="stats"]').click();
    await page.locator('.card', { hasText: 'Derived values' }).waitFor();
    expect(await page.locator('.card', { hasText: 'Derived values' }).textContent()).toContain('average confidence 80 %');
  });

  it('draws the graph of a run with 1,000 steps (timed in bench/dashboard.ts)', async () => {
    await http(served.url, 'PUT', '/api/pipelines/wide', wideDag(1000));
    // Scheduled a day ahead: the run stays queued, so the page shows 1,000 queued steps.
    const run = await http(served.url, 'POST', '/api/pipelines/wide/runs', { input: {}, run_at: Date.now() + 86_400_000 });
    await page.goto(`${served.url}/runs/${run.id}`);
    await page.locator('.dag-label[data-step="s999"]').waitFor({ state: 'attached' });
    await page.locator('.react-flow__edge').first().waitFor({ state: 'attached' });
    expect(await page.locator('.react-flow__node').count()).toBe(1000);
    expect(await page.locator('.react-flow__edge').count()).toBe(1920);
    await screenshot(page, 'run-1000-steps', false);
    expect((await http(served.url, 'POST', `/api/runs/${run.id}/cancel`, {})).status).toBe('cancelled');
  });

  it('browses the runs list with filters', async () => {
    await page.goto(`${served.url}/runs?pipeline=gated`);
    await page.getByTestId('runs').waitFor();
    expect(await page.locator('[data-run]').count()).toBe(1);
    await page.getByTestId('filter-pipeline').selectOption('');
    await page.waitForFunction("document.querySelectorAll('[data-run]').length > 2");
    await page.getByTestId('filter-status').selectOption('cancelled');
    await page.waitForFunction("document.querySelectorAll('[data-run]').length === 1");
    await page.getByTestId('filter-status').selectOption('paused');
    await page.locator('.empty').waitFor();
    expect(await page.locator('.empty').textContent()).toContain('match these filters');
    await page.getByTestId('filter-status').selectOption('');
    await page.getByTestId('runs').waitFor();
    await screenshot(page, 'runs');
  });
});

/** Controls a viewer must not be offered: each would fail with 403. */
const MUTATING = /^(Start run|Start|Pause|Resume|Cancel|Retry|Roll back|Approve|Reject|Save new version|Run evals|Override|Save override|Add override as eval)$/;

suite('dashboard in Chromium with tokens', () => {
  let served: Served;
  let browser: Browser;
  let page: Page;
  let admin: string;
  let viewer: string;
  let blockedRun: string;

  beforeAll(async () => {
    const tokens: Record<string, string> = {};
    served = await startServe({
      before: async (store) => {
        for (const role of ['admin', 'viewer']) {
          const r = await runCli(['token', 'create', '--role', role, '--name', `${role}-user`, '--store', store]);
          if (r.code !== 0) throw new Error(r.stderr);
          tokens[role] = r.stdout.trim();
        }
      },
    });
    admin = tokens['admin']!;
    viewer = tokens['viewer']!;
    await http(served.url, 'PUT', '/api/pipelines/gated', GATED_YAML, admin, yaml);
    await seedProducts(served.url, admin);
    await http(served.url, 'POST', '/api/datasets/products/records/p2/overrides/category', { value: 'seating' }, admin);
    await http(served.url, 'POST', '/api/pipelines/product-category/evals/from-override', { dataset: 'products', record_id: 'p2', field: 'category' }, admin);
    blockedRun = (await http(served.url, 'POST', '/api/pipelines/gated/runs', { input: {} }, admin)).id;
    for (let i = 0; i < 100; i++) {
      const run = await http(served.url, 'GET', `/api/runs/${blockedRun}`, undefined, admin);
      if (run.status === 'waiting') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await launchBrowser(chromiumPath!);
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    await killSpawned();
  });

  async function mutatingButtons(): Promise<string[]> {
    const names = await page.locator('button:visible').allTextContents();
    return names.map((n) => n.trim()).filter((n) => MUTATING.test(n));
  }

  it('asks for a token, and goes back to sign-in when the token is refused', async () => {
    await page.goto(`${served.url}/`);
    await page.getByTestId('token-input').waitFor();
    await screenshot(page, 'sign-in');
    await page.getByTestId('token-input').fill('sluice_not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.error-box', { hasText: 'refused' }).waitFor();
    await page.evaluate("localStorage.setItem('sluice.token', 'sluice_stale')");
    await page.goto(`${served.url}/runs`);
    await page.getByTestId('token-input').waitFor();
  });

  it('shows a viewer no control that would fail', async () => {
    await page.getByTestId('token-input').fill(viewer);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('who').filter({ hasText: 'viewer' }).waitFor();
    await page.getByTestId('runs').waitFor(); // signing in keeps the page that asked for it
    expect(await mutatingButtons()).toEqual([]);
    await page.goto(`${served.url}/`);
    await page.locator('tr[data-pipeline="gated"]').waitFor();
    expect(await mutatingButtons()).toEqual([]);

    await page.goto(`${served.url}/pipelines/gated`);
    await page.locator('.dag-label[data-step="review"][data-status="blocked"]').waitFor();
    expect(await mutatingButtons()).toEqual([]);
    await page.goto(`${served.url}/pipelines/gated?tab=definition`);
    await page.getByTestId('definition').waitFor();
    expect(await mutatingButtons()).toEqual([]);
    await page.goto(`${served.url}/pipelines/product-category?tab=evals`);
    await page.getByTestId('evals').waitFor();
    expect(await mutatingButtons()).toEqual([]);
    expect(await page.getByTestId('desired-output').count()).toBe(0);
    await screenshot(page, 'viewer-evals');

    await page.goto(`${served.url}/runs/${blockedRun}?step=review`);
    await page.getByTestId('step-panel').waitFor();
    await page.locator('.notice', { hasText: 'Waiting for an operator' }).waitFor();
    expect(await mutatingButtons()).toEqual([]);
    expect(await page.getByTestId('run-controls').count()).toBe(0);
    await screenshot(page, 'viewer-run-blocked');

    await page.goto(`${served.url}/datasets/products?record=p2`);
    await page.locator('.value-card[data-field="category"]').waitFor();
    expect(await mutatingButtons()).toEqual([]);
  });

  it('offers an admin the controls', async () => {
    await page.evaluate(`localStorage.setItem('sluice.token', ${JSON.stringify(admin)})`);
    await page.goto(`${served.url}/runs/${blockedRun}?step=review`);
    await page.getByTestId('approval').waitFor();
    expect(await mutatingButtons()).toEqual(expect.arrayContaining(['Pause', 'Cancel', 'Approve', 'Reject']));
  });
});
