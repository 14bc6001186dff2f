/**
 * A SQLite store that cannot be written: `sluice serve` and `sluice run` say that it is read-only and where, and
 * exit non-zero without a stack trace. As root, file permissions do not stop writes, so the store is made
 * read-only the way SQLite sees it (PRAGMA query_only through SLUICE_SQLITE_PRAGMAS, which answers
 * SQLITE_READONLY); file modes are tried as a user without root too. Needs dist/: `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killSpawned, runCli, SLUICE_BIN, tempDir } from '../support/cli.js';

const PIPELINE = `name: hello
steps:
  hi:
    uses: code
    with:
      code: 'return 1;'
`;

describe('a read-only SQLite store', () => {
  const tmp = tempDir('sluice-readonly-');
  afterEach(() => killSpawned());
  afterAll(() => tmp.cleanup());

  const expectPlainReadOnly = (r: { code: number | null; stderr: string }, file: string) => {
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toContain('STORE_READONLY');
    expect(r.stderr).toContain(`the store ${file} is read-only`);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  };

  it('makes sluice serve and sluice run exit non-zero, naming the file, without a stack trace', async () => {
    const file = path.join(tmp.dir, 'query-only.db');
    writeFileSync(path.join(tmp.dir, 'hello.yaml'), PIPELINE);
    const env = { SLUICE_SQLITE_PRAGMAS: 'query_only = ON' };
    const serve = await runCli(['--store', `sqlite:${file}`, 'serve', '--port', '0'], { cwd: tmp.dir, env, timeoutMs: 30_000 });
    expectPlainReadOnly(serve, file);
    const run = await runCli(['--store', `sqlite:${file}`, 'run', 'hello.yaml'], { cwd: tmp.dir, env, timeoutMs: 30_000 });
    expectPlainReadOnly(run, file);
  });

  // As root, the process drops to `nobody` (setpriv) so that file permissions apply.
  const asRoot = process.getuid?.() === 0;
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  it.skipIf(asRoot && !setpriv)('says the same of a store file with mode 0444 and of a folder it cannot write, as a user without root', () => {
    const dir = path.join(tmp.dir, 'perm');
    mkdirSync(dir);
    chmodSync(tmp.dir, 0o755);
    chmodSync(dir, 0o777);
    writeFileSync(path.join(dir, 'hello.yaml'), PIPELINE);
    const sluice = (...args: string[]) => {
      const argv = [process.execPath, SLUICE_BIN, ...args];
      const [cmd, ...rest] = asRoot ? [setpriv!, '--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv;
      const r = spawnSync(cmd!, rest, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
      return { code: r.status, stderr: r.stderr };
    };
    const file = path.join(dir, 'mode-0444.db');
    expect(sluice('--store', `sqlite:${file}`, 'migrate').code).toBe(0);
    chmodSync(file, 0o444);
    expectPlainReadOnly(sluice('--store', `sqlite:${file}`, 'run', 'hello.yaml'), file);
    expectPlainReadOnly(sluice('--store', `sqlite:${file}`, 'serve', '--port', '0'), file);
    chmodSync(dir, 0o555);
    const inFolder = path.join(dir, 'new.db');
    expectPlainReadOnly(sluice('--store', `sqlite:${inFolder}`, 'serve', '--port', '0'), inFolder);
    chmodSync(dir, 0o755);
  });
});
