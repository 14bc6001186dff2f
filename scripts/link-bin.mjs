// Links this checkout's own `sluice` command into node_modules/.bin (npm links the commands of dependencies only),
// so that `npx sluice` in the checkout runs it at once. Without the link, npx installs the checkout into its cache
// as a package of its own, which builds it all over again: about 25 s on the first `npx sluice` of a fresh clone.
import { existsSync, lstatSync, mkdirSync, symlinkSync, unlinkSync } from 'node:fs';

const bin = new URL('../node_modules/.bin/', import.meta.url);
const link = new URL('sluice', bin);
// Installed as a dependency (no node_modules of its own here), there is nothing to link.
if (existsSync(new URL('../node_modules/', import.meta.url))) {
  mkdirSync(bin, { recursive: true });
  try {
    if (lstatSync(link).isSymbolicLink()) unlinkSync(link);
  } catch {
    // No link yet.
  }
  if (!existsSync(link)) symlinkSync('../../bin/sluice.js', link);
}
