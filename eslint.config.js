import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Import paths of a layer (a folder under src/, or a module at its top), as relative imports name them from anywhere in src/. */
const layer = (name) =>
  name.endsWith('.js')
    ? [`../${name}`, `../../${name}`, `../../../${name}`]
    : [`../${name}/*`, `../${name}/**`, `../../${name}/*`, `../../${name}/**`, `../../../${name}/*`, `../../../${name}/**`];

/** Every folder of src/ but core and store, and the entry modules at its top: what src/store never imports. */
const outsideStore = ['steps', 'engine', 'attributes', 'evals', 'datasets', 'artifacts', 'server', 'cli', 'define', 'telemetry', 'index.js', 'postgres.js', 'server.js'];

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
  {
    // No module of src/ over 500 lines: a longer one is split by concern.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 500, skipBlankLines: false, skipComments: false }],
      // Errors cross processes and sandboxes and are stored and read back: ask for the brand or the code
      // (isSluiceError, hasErrorCode, errorCodeOf in core/errors.ts), not the class.
      'no-restricted-syntax': [
        'error',
        {
          selector: "BinaryExpression[operator='instanceof'][right.name=/^(SluiceError|ValidationError)$/]",
          message: 'Match a Sluice error by its brand or code (isSluiceError, hasErrorCode, errorCodeOf), not with instanceof.',
        },
      ],
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
    // store: the run-state rules (store/ledger) over two dialect drivers; it imports core and store only, with no
    // exception: what a feature checks before it writes is pure and lives in core, and the artifact side opens the
    // store's artifact tables itself (artifacts/store-artifacts.ts).
    files: ['src/store/**/*.ts'],
    rules: { 'no-restricted-imports': refuse('src/store imports only src/core and src/store.', ...outsideStore) },
  },
  {
    // Neither driver reaches into the other: what both need lives in src/store.
    files: ['src/store/postgres/**/*.ts'],
    rules: { 'no-restricted-imports': refuse('src/store/postgres imports neither src/store/sqlite nor anything outside src/core and src/store.', 'sqlite', ...outsideStore) },
  },
  {
    files: ['src/store/sqlite/**/*.ts'],
    rules: { 'no-restricted-imports': refuse('src/store/sqlite imports neither src/store/postgres nor anything outside src/core and src/store.', 'postgres', ...outsideStore) },
  },
);
