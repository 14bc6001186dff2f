// `npm install`'s build of a checkout (npm's `prepare`), skipped when the build is newer than everything it is made
// from. `npx sluice` in a checkout installs the checkout into npx's cache, and npm runs `prepare` for it again: after
// `npm install` had just built it, that was a second full build (about 25 s) before the first command ran.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const stamp = new URL('dist/.build-stamp', root);
const inputs = ['src', 'web', 'schema', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];

/** The newest modification time under `url` (a file or a folder), 0 when it does not exist. */
function newest(url) {
  let st;
  try {
    st = statSync(url);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const entry of readdirSync(url, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist') continue;
    max = Math.max(max, newest(new URL(entry.isDirectory() ? `${entry.name}/` : entry.name, url)));
  }
  return max;
}

const built = newest(stamp);
const source = Math.max(...inputs.map((name) => newest(new URL(name, root))));
if (built > source) {
  console.log('sluice: dist/ is newer than its sources; not building again');
} else {
  for (const script of ['build', 'build:web']) {
    const run = spawnSync('npm', ['run', script], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
    if (run.status !== 0) process.exit(run.status ?? 1);
  }
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}
