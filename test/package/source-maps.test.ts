import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';

/** The files `npm pack` puts in the package (the build must have run: `npx tsc -p tsconfig.build.json`). */
function packedFiles(): Set<string> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const out = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [pack] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
  return new Set(pack!.files.map((f) => f.path));
}

describe('the packed package', () => {
  it('ships the LICENSE, and the source of every source map it ships', () => {
    const files = packedFiles();
    expect(files).toContain('LICENSE');
    const maps = [...files].filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(50);
    const unresolved: string[] = [];
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(path.join(REPO_ROOT, map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(map), source));
        if (!files.has(target)) unresolved.push(`${map} -> ${target}`);
      }
    }
    expect(unresolved.slice(0, 5), `${unresolved.length} sources missing`).toEqual([]);
  });
});
