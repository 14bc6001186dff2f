import { readFileSync } from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';

interface LockEntry {
  version?: string;
  dev?: boolean;
  engines?: { node?: string } | string[];
}

const SUPPORTED_LINES = [20, 22, 24];

const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string }; overrides?: object };
const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

describe('package metadata', () => {
  it("every package a user installs runs on the oldest Node of each release line sluice's engines admit", () => {
    const ours = pkg.engines.node;
    // The long-term lines Sluice supports (STYLE.md); a package that lists majors explicitly (20.x || 22.x) is fine.
    const oldest = SUPPORTED_LINES.map((major) => semver.minVersion(`${ours} ${major}.x`)?.version).filter((v) => v !== undefined);
    expect(oldest).not.toEqual([]);
    const refused: string[] = [];
    for (const [where, entry] of Object.entries(lock.packages)) {
      if (where === '' || entry.dev) continue;
      const theirs = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      const fails = theirs === undefined ? [] : oldest.filter((v) => !semver.satisfies(v, theirs));
      if (fails.length > 0) refused.push(`${where.replace(/^.*node_modules\//, '')}@${entry.version} wants node ${theirs}, not ${fails.join(', ')}`);
    }
    expect(refused, `sluice's engines say node ${ours}`).toEqual([]);
  });

  it('sets no overrides: they change this repository\'s lockfile but never what a user installs', () => {
    expect(pkg.overrides ?? {}).toEqual({});
  });
});
