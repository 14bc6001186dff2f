import { SluiceError } from '../../core/errors.js';
import { createApiToken, ROLES } from '../../server/auth.js';
import type { ApiRole } from '../../store/store.js';
import { openStore } from '../../store/open-store.js';
import { printJson, storeUrl, type GlobalOptions } from '../context.js';

/** `sluice token create --role admin|operator|viewer [--name N]`: prints the token once; the store keeps its sha256. */
export async function tokenCreateCommand(opts: GlobalOptions & { role: string; name?: string }): Promise<number> {
  if (!ROLES.includes(opts.role as ApiRole)) throw new SluiceError('INPUT_INVALID', `--role must be one of ${ROLES.join(', ')}, got ${opts.role}`);
  const store = await openStore(storeUrl(opts));
  try {
    const { token, record } = await createApiToken(store, opts.role as ApiRole, opts.name ?? null);
    if (opts.json) printJson({ token, id: record.id, role: record.role, name: record.name });
    else process.stdout.write(`${token}\n`);
    process.stderr.write(`token ${record.id} (${record.role}) created; it is shown only now\n`);
    return 0;
  } finally {
    await store.close();
  }
}
