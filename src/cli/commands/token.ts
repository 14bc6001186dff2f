import { parseDuration } from '../../core/duration.js';
import { SluiceError } from '../../core/errors.js';
import { createApiToken, ROLES } from '../../server/auth.js';
import type { ApiRole } from '../../store/store.js';
import { openStore } from '../../store/open-store.js';
import { printJson, storeUrl, type GlobalOptions } from '../context.js';

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
