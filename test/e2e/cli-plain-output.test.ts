import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killSpawned, runCli, SLUICE_BIN } from '../support/cli.js';

afterAll(killSpawned);

// A step that fails with a two-line message: its event line must cut it with ASCII, not an ellipsis glyph.
const PIPELINE = `name: plain-output
steps:
  greet:
    uses: command
    with:
      run: echo hello
  fail:
    uses: command
    needs: [greet]
    retry: { attempts: 1 }
    with:
      run: "printf 'first line\\\\nsecond line\\\\n' >&2; exit 3"
`;

/** util-linux `script` gives the CLI a pseudo-terminal, as a user's shell would. */
const hasScript = spawnSync('script', ['--version']).status === 0;
// Escape sequences (ESC [) and anything beyond ASCII, as the terminal receives them.
// eslint-disable-next-line no-control-regex
const CURSOR_MOVES = /\x1b\[/;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

describe('sluice run output', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function project(): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-plain-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'p.yaml'), PIPELINE);
    return dir;
  }

  /** `sluice run p.yaml` on a pseudo-terminal with `env`; what the terminal received. */
  function runOnTerminal(env: Record<string, string | undefined>): string {
    const dir = project();
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(SLUICE_BIN)} --store sqlite:s.db run p.yaml`;
    const childEnv: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: undefined, ...env };
    for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { cwd: dir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, encoding: 'utf8' });
    expect(r.status, `${r.stderr}${r.stdout}`).toBe(1); // script -e passes on the CLI's exit code: the run fails by design
    return r.stdout;
  }

  it.runIf(hasScript)('redraws a live table with glyphs on a capable terminal', () => {
    const out = runOnTerminal({ TERM: 'xterm-256color' });
    expect(out).toMatch(CURSOR_MOVES);
    expect(out).toContain('✘ fail');
  });

  it.runIf(hasScript)('writes plain ASCII lines, no cursor movement, on a terminal with TERM=dumb or NO_COLOR set', () => {
    for (const env of [{ TERM: 'dumb' }, { TERM: 'xterm-256color', NO_COLOR: '1' }]) {
      const out = runOnTerminal(env);
      expect(out, JSON.stringify(env)).not.toMatch(CURSOR_MOVES);
      expect(out, JSON.stringify(env)).not.toMatch(NON_ASCII);
      expect(out).toMatch(/step\.failed +fail +attempt 1 +\d+ms +COMMAND_FAILED: .*\.\.\.\r?\n/);
    }
  });

  it('writes plain ASCII lines when stdout is not a terminal', async () => {
    const dir = project();
    const r = await runCli(['--store', 'sqlite:s.db', 'run', 'p.yaml'], { cwd: dir, env: { TERM: 'xterm-256color' } });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).not.toMatch(CURSOR_MOVES);
    expect(r.stdout).not.toMatch(NON_ASCII);
    expect(r.stdout).toMatch(/step\.failed +fail +attempt 1 +\d+ms +COMMAND_FAILED: .*\.\.\.\n/);
  });
});
