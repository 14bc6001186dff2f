import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, http, launchBrowser, screenshot, startServe, webBuilt, type Served } from '../support/browser.js';
import { killSpawned } from '../support/cli.js';

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

const yaml = 'application/yaml';

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
    expect((await api.json()).error.code).toBe('ROUTE_NOT_FOUND');
    expect((await fetch(`${served.url}/assets/missing.js`)).status).toBe(404);
  });

  it('lists pipelines, starts a run from the UI and turns its steps green live', async () => {
    await page.goto(`${served.url}/`);
    await page.locator('tr[data-pipeline="demo"]').waitFor();
    await expect(page.locator('tr[data-pipeline="gated"]').textContent()).resolves.toContain('never run');
    await screenshot(page, 'pipelines-empty-runs');

    await page.locator('a', { hasText: 'demo' }).first().click();
    await page.locator('.dag-label[data-step="publish"]').waitFor();
    await page.evaluate(() => ((window as unknown as { noReload: boolean }).noReload = true));
    await page.getByTestId('start-run').click();
    await page.getByTestId('start-run-submit').click();
    await page.waitForURL(/\/runs\/[^/]+$/);
    // The page is never reloaded: statuses arrive over the live stream.
    await page.locator('.dag-label[data-step="fetch"][data-status="running"], .dag-label[data-step="fetch"][data-status="succeeded"]').waitFor({ timeout: 10_000 });
    for (const step of ['fetch', 'parse', 'score', 'publish']) {
      await page.locator(`.dag-label[data-step="${step}"][data-status="succeeded"]`).waitFor({ timeout: 15_000 });
    }
    expect(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true);
    await page.locator('h1 .badge', { hasText: 'succeeded' }).waitFor();
    await page.locator('.tl-row', { hasText: 'fetch' }).click();
    await page.getByTestId('logs').waitFor();
    expect(await page.getByTestId('logs').textContent()).toContain('fetched');
    await screenshot(page, 'run-succeeded');

    await page.goto(`${served.url}/pipelines/demo?tab=stats`);
    await page.getByTestId('charts').waitFor();
    await screenshot(page, 'pipeline-stats');
    await page.goto(`${served.url}/`);
    await page.locator('tr[data-pipeline="demo"] .badge', { hasText: 'succeeded' }).waitFor();
    await screenshot(page, 'pipelines');
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

  it('validates a definition and marks the line an issue names', async () => {
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
    await editor.fill(text);
  });

  it('browses the runs list with filters', async () => {
    await page.goto(`${served.url}/runs?pipeline=gated`);
    await page.getByTestId('runs').waitFor();
    expect(await page.locator('[data-run]').count()).toBe(1);
    await page.getByTestId('filter-pipeline').selectOption('');
    await page.waitForFunction(() => document.querySelectorAll('[data-run]').length === 2);
    await page.getByTestId('filter-status').selectOption('failed');
    await page.locator('.empty').waitFor();
    expect(await page.locator('.empty').textContent()).toContain('match these filters');
    await page.getByTestId('filter-status').selectOption('');
    await page.getByTestId('runs').waitFor();
    await screenshot(page, 'runs');
  });
});
