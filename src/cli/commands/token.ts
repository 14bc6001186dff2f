import { parseDuration } from '../../core/duration.js';
import { SluiceError } from '../../core/errors.js';
import { createApiToken, ROLES } from '../../server/auth.js';
import type { ApiRole } from '../../store/store.js';
import { openStore } from '../../store/open-store.js';
import type { ApiToken, Store } from '../../store/store.js';
import { formatTime, printJson, storeUrl, table, type GlobalOptions } from '../context.js';

/** `sluice token create --role admin|operator|viewer [--name N]`: prints the token once; the store keeps its sha256. */
export async function tokenCreateCommand(opts: GlobalOptions & { role: string; name?: string; expires?: string }): Promise<number> {
  if (!ROLES.includes(opts.role as ApiRole)) throw new SluiceError('INPUT_INVALID', `--role must be one of ${ROLES.join(', ')}, got ${opts.role}`);
  const expiresAt = opts.expires === undefined ? null : Date.now() + validity(opts.expires);
  const store = await openStore(storeUrl(opts));
  try {
    const { token, record } = await createApiToken(store, opts.role as ApiRole, opts.name ?? null, Date.now(), expiresAt);
    if (opts.json) printJson({ token, id: record.id, role: record.role, name: record.name, expires_at: expiresAt === null ? null : new Date(expiresAt).toISOString() });
    else process.stdout.write(`${token}\n`);
    process.stderr.write(`token ${record.id} (${record.role}) created; it is shown only now\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/** `sluice token list`: every token with its id, name, role and times; never the token nor its hash. */
export async function tokenListCommand(opts: GlobalOptions): Promise<number> {
  return withTokenStore(opts, async (store) => {
    const tokens = await store.listTokens();
    if (opts.json) printJson(tokens.map(tokenJson));
    else if (tokens.length === 0) process.stdout.write('no tokens; create one with sluice token create --role admin\n');
    else {
      const rows = tokens.map((t) => [String(t.id), t.name ?? '-', t.role, formatTime(t.createdAt), formatTime(t.expiresAt), formatTime(t.revokedAt)]);
      process.stdout.write(`${table(['ID', 'NAME', 'ROLE', 'CREATED', 'EXPIRES', 'REVOKED'], rows)}\n`);
    }
    return 0;
  });
}

/** `sluice token revoke ID`: servers refuse the token from then on (within a second: their lookups are cached that long). */
export async function tokenRevokeCommand(id: string, opts: GlobalOptions): Promise<number> {
  if (!/^[0-9]{1,15}$/.test(id)) throw new SluiceError('INPUT_INVALID', `the token id must be a number as sluice token list shows it, got ${id}`);
  return withTokenStore(opts, async (store) => {
    const token = await store.revokeToken(Number(id), Date.now());
    if (!token) throw new SluiceError('INPUT_INVALID', `no token with id ${id}; sluice token list shows them`);
    if (opts.json) printJson(tokenJson(token));
    else process.stdout.write(`token ${token.id} (${token.role}${token.name === null ? '' : `, ${token.name}`}) revoked at ${formatTime(token.revokedAt)}\n`);
    return 0;
  });
}

async function withTokenStore(opts: GlobalOptions, fn: (store: Store) => Promise<number>): Promise<number> {
  const store = await openStore(storeUrl(opts));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function tokenJson(t: ApiToken) {
  return { id: t.id, name: t.name, role: t.role, created_at: isoOrNull(t.createdAt), expires_at: isoOrNull(t.expiresAt), revoked_at: isoOrNull(t.revokedAt) };
}

/** `--expires 30d`: how long the token is accepted. */
function validity(text: string): number {
  try {
    const ms = parseDuration(text);
    if (ms > 0) return ms;
  } catch {
    // reported below
  }
  throw new SluiceError('INPUT_INVALID', `--expires must be a positive duration such as 12h or 30d, got ${text}`);
}
