/**
 * The dashboard's figures: gzipped size of each emitted JavaScript file (what the first page load costs),
 * and the time until the run page of a 1,000-step run shows its graph in Chromium.
 *
 *   npm run build && npm run build:web && npx tsx bench/dashboard.ts [--steps 1000] [--repeat 3]
 *
 * The run page is timed from navigation start to the last node and the edges of the graph being in the page, against a real
 * `sluice serve --workers 0` (the run stays queued) on a temp SQLite store. Goal: under 2 s; initial JS under
 * 400 KB gzipped.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { findChromium, http, launchBrowser, startServe, webBuilt, wideDag } from '../test/support/browser.js';
import { REPO_ROOT } from '../test/support/cli.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function bundleSizes(): void {
  const dir = path.join(REPO_ROOT, 'dist', 'web');
  const html = readFileSync(path.join(dir, 'index.html'), 'utf8');
  const entry = [...html.matchAll(/src="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
  const files = readdirSync(path.join(dir, 'assets')).filter((f) => f.endsWith('.js'));
  let initial = 0;
  console.log('JavaScript emitted (gzip -9):');
  for (const f of files) {
    const bytes = readFileSync(path.join(dir, 'assets', f));
    const gz = gzipSync(bytes, { level: 9 }).length;
    const isEntry = entry.includes(`assets/${f}`);
    if (isEntry) initial += gz;
    console.log(`  ${f.padEnd(28)} ${(bytes.length / 1024).toFixed(1).padStart(7)} KB  gzip ${(gz / 1024).toFixed(1).padStart(6)} KB${isEntry ? '  (initial)' : '  (lazy)'}`);
  }
  console.log(`Initial JavaScript: ${(initial / 1024).toFixed(1)} KB gzipped (goal < 400 KB)`);
}

async function main(): Promise<void> {
  if (!webBuilt()) throw new Error('dist/web is missing: npm run build:web');
  bundleSizes();
  const chromium = findChromium();
  if (!chromium) {
    console.log('No Chromium found (apt-get install -y chromium, or set SLUICE_CHROMIUM): the render time is not measured.');
    return;
  }
  const steps = arg('steps', 1000);
  const repeat = arg('repeat', 3);
  const served = await startServe({ workers: 0 });
  const browser = await launchBrowser(chromium);
  try {
    await http(served.url, 'PUT', '/api/pipelines/wide', wideDag(steps));
    const run = await http(served.url, 'POST', '/api/pipelines/wide/runs', { input: {} });
    const times: number[] = [];
    const busyTimes: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
      page.on('pageerror', (err) => console.error(`page error: ${err.message}`));
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Performance.enable');
      const started = Date.now();
      await page.goto(`${served.url}/runs/${run.id}`);
      await page.locator(`.dag-label[data-step="s${steps - 1}"]`).waitFor({ state: 'attached', timeout: 60_000 });
      await page.locator('.react-flow__edge').first().waitFor({ state: 'attached', timeout: 60_000 });
      const ms = Date.now() - started;
      // CPU time of the page's main thread (script, style, layout): unlike wall time, not inflated by other load.
      const { metrics } = (await cdp.send('Performance.getMetrics')) as { metrics: Array<{ name: string; value: number }> };
      const busy = Math.round((metrics.find((m) => m.name === 'ThreadTime')?.value ?? 0) * 1000);
      const nodes = await page.locator('.react-flow__node').count();
      const edges = await page.locator('.react-flow__edge').count();
      times.push(ms);
      busyTimes.push(busy);
      console.log(`run page with ${steps} steps: graph shown in ${ms} ms, main-thread CPU ${busy} ms (${nodes} nodes, ${edges} edges)`);
      await page.close();
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`median ${median(times)} ms to the graph, ${median(busyTimes)} ms main-thread CPU, over ${repeat} loads (goal < 2000 ms); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`);
  } finally {
    await browser.close();
    await served.stop();
  }
}

await main();
