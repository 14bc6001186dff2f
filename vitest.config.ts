import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests and examples import the package by its name, as users do; here it is the sources.
  resolve: { alias: { sluice: new URL('./src/index.ts', import.meta.url).pathname } },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Type tests (expectTypeOf, @ts-expect-error) of the public API, checked by tsc: they fail when inference breaks.
    typecheck: { enabled: true, include: ['test/types/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
  },
});
