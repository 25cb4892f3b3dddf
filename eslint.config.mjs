// ESLint (flat config): the recommended sets of ESLint and typescript-eslint, plus the house rules that a
// linter can hold (README, docs/errors.md): imports across folders by alias, only the CLI entry exits,
// test helpers outside tests do not assert with uvu.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_`-prefixed names say "unused on purpose" (callbacks that must take a parameter).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../../../*'],
              message: 'import across folders by alias: #runtime/<folder>/<file>, #bench/<file> or #test/<file> (tsconfig paths, package.json imports)',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'exit', message: 'only the CLI entry (cli/main.ts) exits: throw an FfError with a code and a hint' },
      ],
    },
  },
  {
    files: ['ts-runtime/src/cli/main.ts', 'scripts/**', '**/*.test.ts', 'test/support/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['ts-runtime/src/**/*.ts', 'bench/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'uvu', message: 'test code belongs in *.test.ts or test/support/' },
            { name: 'uvu/assert', message: 'test helpers go under test/support/, or throw plain errors' },
          ],
          patterns: [
            {
              group: ['../../../*'],
              message: 'import across folders by alias: #runtime/<folder>/<file>, #bench/<file> or #test/<file> (tsconfig paths, package.json imports)',
            },
          ],
        },
      ],
    },
  },
);
