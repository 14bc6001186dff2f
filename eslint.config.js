import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Import paths of a layer (a folder under src/), as relative imports name them from anywhere in src/. */
const layer = (name) => [`../${name}/*`, `../${name}/**`, `../../${name}/*`, `../../${name}/**`, `../../../${name}/*`, `../../../${name}/**`];

/** A `no-restricted-imports` rule refusing the given layers, with why. */
const refuse = (message, ...layers) => ['error', { patterns: [{ group: layers.flatMap(layer), message }] }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'web/dist/**', '.sluice/**', 'examples/**/.sluice/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // TypeScript checks names; the example scripts are plain Node ESM.
      'no-undef': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  // The layers (docs/architecture.md). A later block for the same files replaces an earlier one's rule.
  {
    // core: the model, validation, expressions, the step policy; no I/O and nothing outside core.
    files: ['src/core/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['../*', '../**'], message: 'src/core imports only src/core.' }] }] },
  },
  {
    // steps: the step contract (step-type.ts) and the built-in types; they never touch the engine or the store.
    files: ['src/steps/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [...['engine', 'store', 'attributes', 'evals', 'datasets', 'server', 'cli', 'artifacts'].flatMap(layer), '!**/artifacts/artifact-store.js'],
              message: 'src/steps imports only src/core, the step contract and the artifact contract (artifacts/artifact-store.ts).',
            },
          ],
        },
      ],
    },
  },
  {
    // engine: runs pipelines over the store port; features such as attribute pipelines plug in as extensions.
    files: ['src/engine/**/*.ts'],
    rules: { 'no-restricted-imports': refuse('src/engine does not import attribute pipelines: they plug in as an extension (engine/extension.ts).', 'attributes') },
  },
  {
    // store: the run-state rules (store/ledger) over two dialect drivers; it imports core and store only (plus the
    // artifact, dataset and eval contracts it persists).
    files: ['src/store/**/*.ts'],
    rules: { 'no-restricted-imports': refuse('src/store imports only src/core and src/store.', 'steps', 'engine', 'attributes', 'server', 'cli', 'define', 'telemetry') },
  },
  {
    // Neither driver reaches into the other: what both need lives in src/store.
    files: ['src/store/postgres/**/*.ts'],
    rules: { 'no-restricted-imports': refuse('src/store/postgres imports neither src/store/sqlite nor anything outside src/core and src/store.', 'sqlite', 'steps', 'engine', 'attributes', 'server', 'cli', 'define', 'telemetry') },
  },
  {
    files: ['src/store/sqlite/**/*.ts'],
    rules: { 'no-restricted-imports': refuse('src/store/sqlite imports neither src/store/postgres nor anything outside src/core and src/store.', 'postgres', 'steps', 'engine', 'attributes', 'server', 'cli', 'define', 'telemetry') },
  },
);
