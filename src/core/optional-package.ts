import { SluiceError } from './errors.js';

/**
 * Loads a package Sluice needs only for one feature (e.g. `pg` for a PostgreSQL store, `openai` for `llm`
 * steps), at the point of first use, so `import('sluice')` neither pays for it nor needs it installed.
 * `load` is a literal `() => import('pkg')` (or of the module that imports it) so types and bundlers follow it.
 * When the package is not installed, throws `DEPENDENCY_MISSING` naming the package, what needs it and the
 * command that installs it; any other failure passes through unchanged.
 */
export async function importOptional<T>(name: string, usedFor: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (!isMissingPackage(err, name)) throw err;
    throw new SluiceError('DEPENDENCY_MISSING', `${usedFor} needs the package ${name}, which is not installed; install it with: npm install ${name}`, {
      cause: err,
    });
  }
}

/** Whether `err` says that the package `name` itself (not something it imports) cannot be found. */
function isMissingPackage(err: unknown, name: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  const message = err instanceof Error ? err.message : '';
  return message.includes(`'${name}'`) || message.includes(`'${name}/`);
}

/**
 * tsx's `tsImport`, loaded on first use: only modules that may be TypeScript (pipeline modules, `function` step
 * modules and packages) go through it, and most runs load none.
 */
export async function tsImport(specifier: string, parentURL: string): Promise<unknown> {
  const tsx = await importOptional('tsx', 'loading a TypeScript module', () => import('tsx/esm/api'));
  return tsx.tsImport(specifier, parentURL);
}
