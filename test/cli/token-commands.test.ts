/** `sluice token create | list | revoke` in-process, on a SQLite file (the store methods run on both backends in test/server). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { tokenCreateCommand, tokenListCommand, tokenRevokeCommand } from '../../src/cli/commands/token.js';
import { hashToken } from '../../src/server/auth.js';
import { openStore } from '../../src/store/open-store.js';

describe('sluice token', () => {
  let dir: string;
  let store: string;
  let out: string[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-token-cli-'));
    store = `sqlite:${join(dir, 's.db')}`;
    out = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  const take = () => out.splice(0).join('');

  it('lists tokens (never the token) and revokes one by id', async () => {
    expect(await tokenListCommand({ store })).toBe(0);
    expect(take()).toContain('no tokens');
    await tokenCreateCommand({ store, role: 'admin', name: 'ops' });
    const secret = take().trim();
    await tokenCreateCommand({ store, role: 'viewer', expires: '30d' });
    take();

    await tokenListCommand({ store });
    const text = take();
    expect(text).toMatch(/^ID\s+NAME\s+ROLE\s+CREATED\s+EXPIRES\s+REVOKED/);
    expect(text).toMatch(/\n1\s+ops\s+admin\s+\S+ \S+\s+-\s+-\n/);
    expect(text).toMatch(/\n2\s+-\s+viewer\s+\S+ \S+\s+\S+ \S+\s+-\n/);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(hashToken(secret));

    expect(await tokenRevokeCommand('1', { store })).toBe(0);
    expect(take()).toMatch(/^token 1 \(admin, ops\) revoked at /);
    await tokenListCommand({ store, json: true });
    const listed = JSON.parse(take()) as Array<Record<string, unknown>>;
    expect(listed.map((t) => [t['id'], t['role'], t['revoked_at'] === null])).toEqual([
      [1, 'admin', false],
      [2, 'viewer', true],
    ]);
    expect(listed[1]).toMatchObject({ name: null, expires_at: expect.stringMatching(/^\d{4}-/) });

    const s = await openStore(store);
    try {
      expect((await s.findToken!(hashToken(secret)))?.revokedAt).toEqual(expect.any(Number));
    } finally {
      await s.close();
    }
  });

  it('names a bad or unknown id', async () => {
    await expect(tokenRevokeCommand('x1', { store })).rejects.toThrow(/token id must be a number/);
    await expect(tokenRevokeCommand('42', { store })).rejects.toThrow(/no token with id 42/);
  });
});
