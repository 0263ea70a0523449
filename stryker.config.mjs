// Mutation testing of the code that guards privacy and integrity (`npm run test:mutation`): every
// check a site or the verifier makes should have a test that fails when the check is broken. A long,
// benchmark-like run (not part of `npm test`); the clear-text report lists the score per folder and file
// and every surviving mutant. The HTML report goes to reports/mutation/.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutation.config.ts' },
  // The first run measures which tests cover which mutant; on 2 cores it takes minutes.
  dryRunTimeoutMinutes: 30,
  mutate: [
    'crypto/secagg/**/*.ts',
    'crypto/shamir.ts',
    'participant/round/**/*.ts',
    'participant/daemon/**/*.ts',
    'participant/state/**/*.ts',
    'coordinator/audit/**/*.ts',
    '!**/index.ts',
  ],
  coverageAnalysis: 'perTest',
  ignoreStatic: true,
  concurrency: 2,
  timeoutMS: 60_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
