/**
 * The dashboard in a real Chromium: finds a browser, starts a real `sluice serve` (bin/sluice.js, which loads
 * dist/ and serves dist/web) on a temp SQLite store, and drives pages with playwright-core. Build first:
 * `npm run build && npm run build:web` (`npm test` does both).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT, runCli, startCli, exited } from './cli.js';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/**
 * The Chromium executable: $SLUICE_CHROMIUM when set (a path that does not exist, e.g. `none`, means no
 * browser), else the first of the usual paths that exists.
 */
export function findChromium(): string | undefined {
  const fromEnv = process.env['SLUICE_CHROMIUM'];
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

/** Whether the built dashboard exists (dist/web/index.html). */
export function webBuilt(): boolean {
  return existsSync(path.join(REPO_ROOT, 'dist', 'web', 'index.html'));
}

export async function launchBrowser(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

export interface Served {
  url: string;
  dir: string;
  store: string;
  process: ChildProcess;
  /** Runs the CLI against the same store. */
  cli(args: string[]): ReturnType<typeof runCli>;
  stop(): Promise<void>;
}

/** Starts `sluice serve --port 0` on a fresh SQLite store and resolves once it listens. */
export async function startServe(options: { workers?: number; before?: (store: string) => Promise<void> } = {}): Promise<Served> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-web-'));
  const store = `sqlite:${path.join(dir, 'sluice.db')}`;
  await options.before?.(store);
  const child = startCli(['serve', '--store', store, '--port', '0', '--workers', String(options.workers ?? 4), '--no-cron'], { env: { SLUICE_LOG_LEVEL: 'warn' } });
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`sluice serve did not start:\n${err}`)), 30_000);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /sluice serve on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`sluice serve exited ${code}:\n${err}`)));
  });
  return {
    url,
    dir,
    store,
    process: child,
    cli: (args) => runCli([...args, '--store', store]),
    async stop() {
      child.kill('SIGTERM');
      await exited(child, 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** JSON over HTTP to a served API, with an optional bearer token; throws with the body on non-2xx. */
export async function http<T = any>(base: string, method: string, route: string, body?: unknown, token?: string, contentType = 'application/json'): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = contentType;
  const res = await fetch(`${base}${route}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route} -> ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : null) as T;
}

export const SCREENSHOTS = path.join(REPO_ROOT, 'test-results', 'screenshots');

/**
 * Saves a screenshot to test-results/screenshots/NAME.png: the full page, or only the viewport (a full-page
 * capture resizes the window, which makes a large graph redraw mid-capture).
 */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage });
}

/** A pipeline of `steps` code steps in layers of `width`, each needing one or two steps of the layer before. */
export function wideDag(steps: number, width = 40): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  for (let i = 0; i < steps; i++) {
    const layer = Math.floor(i / width);
    const needs = layer === 0 ? [] : [...new Set([(layer - 1) * width + (i % width), (layer - 1) * width + ((i * 7 + 3) % width)])].map((n) => `s${n}`);
    spec[`s${i}`] = { uses: 'code', needs, with: { code: 'return 1' } };
  }
  return { name: 'wide', description: `${steps} steps in layers of ${width}`, steps: spec };
}
