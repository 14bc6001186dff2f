import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread running the module `name` (without extension) that sits beside `self` (the caller's
 * `import.meta.url`). Built code loads `name.js` directly; from TypeScript sources (tests, `tsx`) the thread loads
 * `name.ts` through tsx, which takes about half a second once per thread.
 */
export function startModuleThread(self: string, name: string): Worker {
  if (!self.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, self));
  // require.resolve gives the CommonJS build of tsx's API; its ES module build sits beside it.
  const tsx = pathToFileURL(createRequire(self).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const entry = new URL(`./${name}.ts`, self).href;
  const boot = `import(${JSON.stringify(tsx)}).then((api) => api.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(self)}))`;
  return new Worker(boot, { eval: true });
}

/**
 * Starts a Node process running the module `name` beside `self`, with an IPC channel and `arg` as its one argument,
 * in a session of its own (`detached`, except on Windows, where that would open a console). From TypeScript sources
 * it runs through tsx. It gets none of this process's Node flags (a profiler's, say), inherits only stderr, and of
 * the environment only what a process needs to start and tell the time: no secret of the engine's is in its memory.
 */
export function startModuleProcess(self: string, name: string, arg: string): ChildProcess {
  const typescript = self.endsWith('.ts');
  const entry = fileURLToPath(new URL(`./${name}.${typescript ? 'ts' : 'js'}`, self));
  const execArgv = typescript ? ['--import', pathToFileURL(createRequire(self).resolve('tsx')).href] : [];
  return fork(entry, [arg], {
    execArgv,
    detached: process.platform !== 'win32',
    serialization: 'advanced',
    env: pickEnv(['PATH', 'SYSTEMROOT', 'TZ', 'LANG']),
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
}

function pickEnv(names: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of names) if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}
