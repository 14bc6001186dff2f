/**
 * Cold start: the wall time of a fresh Node process that runs `await import('sluice')` (the engine, SQLite and
 * definitions) and one that runs `sluice --help`, each started `--repeat` times (default 7); prints the median,
 * the fastest and slowest, and `node -e 0` on the same machine for reference. Also names the heavy packages each
 * start loaded (the server, PostgreSQL, the model client, the TS loader, QuickJS): none should appear.
 * Goals on the 2-core development machine: both medians under 300 ms.
 *
 *   npm run build && npx tsx bench/startup.ts [--repeat 7] [--dist DIR]
 *
 * `--dist` measures another build of Sluice (e.g. of an earlier commit, with its own `bin/`) to compare.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const repeat = Number(arg('repeat', '7'));
const dist = resolve(arg('dist', join(import.meta.dirname, '..', 'dist')));
const bin = join(dist, '..', 'bin', 'sluice.js');
const HEAVY = ['fastify', '@fastify/swagger', '@fastify/swagger-ui', '@fastify/websocket', 'pg', 'openai', 'tsx', 'esbuild', 'quickjs-emscripten-core'];

/** A resolve hook that names every package an ESM import reaches, on stderr. */
const HOOK = `export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(r.url);
  if (m) process.stderr.write('LOADED ' + m[1] + '\\n');
  return r;
}`;

interface Case {
  name: string;
  args: string[];
}

const cases: Case[] = [
  { name: 'node -e 0 (reference)', args: ['-e', '0'] },
  { name: "import('sluice')", args: ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(join(dist, 'index.js')).href)})`] },
  { name: 'sluice --help', args: [bin, '--help'] },
];

/** Prints the process's CPU time (user + system, ms) on stderr as it exits. */
const CPU_REPORT = `process.on('exit', () => { const u = process.cpuUsage(); process.stderr.write('CPU ' + (u.user + u.system) / 1000 + '\\n'); });`;

/** One cold start: wall time from spawn to exit, and the CPU time the process used (less sensitive to load). */
function timeOnce(args: string[], dir: string): { wall: number; cpu: number } {
  const report = join(dir, 'cpu-report.mjs');
  writeFileSync(report, CPU_REPORT);
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(report).href, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  const wall = performance.now() - started;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  const cpu = Number(/^CPU (\S+)$/m.exec(r.stderr.toString())?.[1]);
  return { wall, cpu };
}

function heavyLoaded(args: string[], dir: string): string[] {
  const hook = join(dir, 'hook.mjs');
  const register = join(dir, 'register.mjs');
  writeFileSync(hook, HOOK);
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const loaded = new Set([...r.stderr.toString().matchAll(/^LOADED (\S+)$/gm)].map((m) => m[1]!));
  return HEAVY.filter((p) => loaded.has(p));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-startup-'));
try {
  console.log(`cold starts of ${dist} (${repeat} each; wall time median [min-max], CPU time median)`);
  for (const c of cases) {
    timeOnce(c.args, dir); // warms the OS file cache, as a second start by a user would find it
    const runs = Array.from({ length: repeat }, () => timeOnce(c.args, dir));
    const walls = runs.map((r) => r.wall);
    const heavy = c.args[0] === '-e' ? [] : heavyLoaded(c.args, dir);
    const range = `[${Math.round(Math.min(...walls))}-${Math.round(Math.max(...walls))}]`;
    const cpu = `cpu ${Math.round(median(runs.map((r) => r.cpu)))} ms`;
    console.log(`${c.name.padEnd(24)} ${String(Math.round(median(walls))).padStart(5)} ms ${range.padEnd(12)} ${cpu.padEnd(13)} heavy packages loaded: ${heavy.join(', ') || 'none'}`);
  }
  console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
