import js from '@eslint/js';
import { dirname, relative, resolve, sep } from 'node:path';
import tseslint from 'typescript-eslint';
import { boundaryViolation } from './tools/boundaries.ts';

// sluice/boundaries: an import that crosses an area boundary (tools/boundaries.ts holds the rules
// and the allow-list of today's leaks) is an error. `node tools/import-graph.ts` prints the graph.
const repoPath = (file) => relative(import.meta.dirname, file).split(sep).join('/');
const boundaries = {
  meta: { type: 'problem', docs: { description: 'imports respect the boundaries in tools/boundaries.ts' }, schema: [] },
  create(context) {
    const from = repoPath(context.filename);
    const check = (source) => {
      if (!source || source.type !== 'Literal' || typeof source.value !== 'string' || !source.value.startsWith('.')) return;
      const why = boundaryViolation(from, repoPath(resolve(dirname(context.filename), source.value)));
      if (why) context.report({ node: source, message: `${why} (tools/boundaries.ts)` });
    };
    return {
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => check(n.source),
    };
  },
};

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '**/testdata/**', 'coverage/**', '.work/**', 'policies/build/**', 'dist/**', 'charts/images/build/**', 'charts/**/dashboards/*.json'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'cli/bin/*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['**/*.ts', '**/*.js'],
    plugins: { sluice: { rules: { boundaries } } },
    rules: { 'sluice/boundaries': 'error' },
  },
  {
    files: ['**/*.test.ts', 'e2e/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  { files: ['*.js', 'cli/bin/*.js'], ...tseslint.configs.disableTypeChecked },
);
