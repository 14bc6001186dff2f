import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    // The store depends on core and on itself only: the run-state rules (store/ledger) are shared by both
    // backends, and neither backend reaches into the other.
    files: ['src/store/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/steps/*', '**/engine/*', '**/server/*', '**/cli/*', '**/attributes/*', '**/features/*'], message: 'the store imports only core and store modules' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/store/postgres/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/sqlite/*'], message: 'the PostgreSQL driver never imports the SQLite driver; shared code lives in src/store' }] }],
    },
  },
  {
    files: ['src/store/sqlite/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/postgres/*'], message: 'the SQLite driver never imports the PostgreSQL driver; shared code lives in src/store' }] }],
    },
  },
);
