// Lint rules the compiler cannot enforce: no floating or misused promises. Layering and import cycles are checked by
// scripts/check-imports.ts (part of `npm run lint`). proto/generated/ is generator output, checked for
// staleness by scripts/check-proto-types.ts instead.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'demo-output/**', 'tmp/**', 'tmp-*.ts', 'proto/generated/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
);
