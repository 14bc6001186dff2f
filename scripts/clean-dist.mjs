// Removes the compiled library from dist/ (keeping the dashboard build in dist/web), so a file moved or deleted
// in src/ leaves no stale module behind to be imported, tested or packed.
import { readdirSync, rmSync } from 'node:fs';

const dist = new URL('../dist/', import.meta.url);
let entries = [];
try {
  entries = readdirSync(dist);
} catch {
  // No dist yet: nothing to clean.
}
for (const entry of entries) {
  if (entry !== 'web') rmSync(new URL(entry, dist), { recursive: true, force: true });
}
