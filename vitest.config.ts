import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    // One PostgreSQL with one migrated template database, and one migrated SQLite file, for the whole run
    // (test/support/global-setup.ts).
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Forks, not threads: the in-process CLI (test/support/cli-in-process.ts) changes the working directory.
    pool: 'forks',
    // Vitest's default is one worker per core but one; on two cores that runs the files one at a time, while
    // much of a file's time is spent waiting on processes, sockets and PostgreSQL.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
