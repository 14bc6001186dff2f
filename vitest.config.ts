import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests and examples import the package by its name, as users do; here it is the sources.
  resolve: { alias: { sluice: new URL('./src/index.ts', import.meta.url).pathname } },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    // One PostgreSQL with one migrated template database, and one migrated SQLite file, for the whole run
    // (test/support/global-setup.ts).
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Forks, not threads: the in-process CLI (test/support/cli-in-process.ts) changes the working directory.
    pool: 'forks',
    // Type tests (expectTypeOf, @ts-expect-error) of the public API, checked by tsc: they fail when inference breaks.
    typecheck: { enabled: true, include: ['test/types/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    // Vitest's default is one worker per core but one; on two cores that runs the files one at a time, while
    // much of a file's time is spent waiting on processes, sockets and PostgreSQL.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
