// Mutation testing of the code that guards privacy and integrity (`npm run test:mutation`): every
// check a site or the verifier makes should have a test that fails when the check is broken. A long,
// benchmark-like run (not part of `npm test`); the clear-text report lists the score per folder and file
// and every surviving mutant. The HTML and JSON reports go to reports/mutation/ (gitignored).
// One folder at a time: `npx stryker run --mutate 'crypto/secagg/**/*.ts'` (docs/mutation-audit.md).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutation.config.ts' },
  // The first run measures which tests cover which mutant; on 2 shared cores it takes a few minutes.
  dryRunTimeoutMinutes: 15,
  mutate: [
    'crypto/secagg/**/*.ts',
    'crypto/shamir.ts',
    'participant/round/**/*.ts',
    'participant/chain/**/*.ts',
    'participant/state/**/*.ts',
    'participant/daemon/**/*.ts',
    'coordinator/audit/**/*.ts',
    '!**/index.ts',
  ],
  // Each mutant runs only the tests that executed it in the dry run.
  coverageAnalysis: 'perTest',
  // Mutants in module-level code (constants, tables) would need every test file re-imported per mutant;
  // they are reported as ignored rather than run.
  ignoreStatic: true,
  // The machine is shared: two test processes at most.
  concurrency: 2,
  // A mutant's timeout is its covering tests' dry-run time x 1.5 + this: enough for a slow shared core,
  // short enough that a mutant that hangs a round costs seconds.
  timeoutMS: 10_000,
  timeoutFactor: 1.5,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
