import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';
import { runCliInProcess } from '../support/cli-in-process.js';

/** Runs the CLI from source (tsx), so this test does not depend on a build. */
function sluice(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function finish(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('sluice serve and sluice token', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('creates a token once, serves with auth on, and refuses a public host without auth', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-serve-'));
    dirs.push(dir);
    const store = `sqlite:${join(dir, 's.db')}`;

    // The commands that need no process of their own run in this one (a start from source takes seconds).
    const refused = await runCliInProcess(['--store', `sqlite:${join(dir, 'empty.db')}`, 'serve', '--host', '0.0.0.0', '--port', '0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('refusing to listen on 0.0.0.0 without auth');

    const created = await runCliInProcess(['--store', store, 'token', 'create', '--role', 'admin', '--name', 'ci']);
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^sluice_[A-Za-z0-9_-]{20,}$/);

    const server = sluice(['--store', store, 'serve', '--port', '0', '--workers', '2']);
    children.push(server);
    const done = finish(server);
    let stderr = '';
    const address = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no address: ${stderr}`)), 30_000);
      server.stderr!.on('data', (d) => {
        stderr += d;
        const m = /sluice serve on (http:\/\/\S+)/.exec(stderr);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
    });
    expect((await fetch(`${address}/api/pipelines`)).status).toBe(401);
    const put = await fetch(`${address}/api/pipelines/hello`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' },
      body: 'steps:\n  say: { uses: command, with: { run: "echo hi" } }\n',
    });
    expect(put.status).toBe(201);
    const run = await fetch(`${address}/api/pipelines/hello/runs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
    const id = ((await run.json()) as { id: string }).id;
    let status = '';
    for (const deadline = Date.now() + 60_000; Date.now() < deadline && status !== 'succeeded'; ) {
      await new Promise((r) => setTimeout(r, 100));
      status = ((await (await fetch(`${address}/api/runs/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { status: string }).status;
    }
    expect(status).toBe('succeeded');
    server.kill('SIGTERM');
    expect((await done).code).toBe(0);
  });
});
