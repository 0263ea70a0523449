import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import base from './vitest.config.js';

/**
 * Stryker stops a mutant's run at the first failing test (bail), so the order of the files decides what
 * a killed mutant costs. Vitest runs the longest files first; here the files that failed in the previous
 * run come first (the mutant before was most likely killed there, and mutants come in source order),
 * then the quickest.
 */
class QuickFirstSequencer extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const { cache, config } = this.ctx;
    const stats = (file: TestSpecification): { failed: boolean; duration: number } => {
      const key = `${file.project.name}:${relative(config.root, file.moduleId)}`;
      const results = cache.getFileTestResults(key);
      return { failed: results?.failed ?? false, duration: results?.duration ?? cache.getFileStats(key)?.size ?? 0 };
    };
    const ranked = files.map((file) => ({ file, ...stats(file) }));
    ranked.sort((a, b) => (a.failed === b.failed ? a.duration - b.duration : a.failed ? -1 : 1));
    return Promise.resolve(ranked.map(({ file }) => file));
  }
}

// The tests `npm run test:mutation` runs against each mutant of the code it mutates (stryker.config.mjs):
// unit tests of the SecAgg+ state machines, Shamir, the site's round, chain, state and daemon code, plus
// the next-model agreement test (no network, no training). Tests that start gRPC daemons or run whole
// federations (the ledger integration tests train three sites in beforeAll) are left out on purpose: a
// mutant one of them covers would cost seconds to tens of seconds each, and the checks they exercise
// have unit tests here (test/unit/coordinator/audit/ verifies synthetic ledgers; docs/mutation-audit.md).
// Spread, not mergeConfig: mergeConfig concatenates arrays, so base's include ('test/**/*.test.ts')
// would bring every test back.
const defaultInclude = [
  'test/unit/crypto/**/*.test.ts',
  'test/unit/participant/round/**/*.test.ts',
  'test/unit/participant/chain/**/*.test.ts',
  'test/unit/participant/state/**/*.test.ts',
  'test/unit/participant/daemon/**/*.test.ts',
  'test/unit/participant/session-watchdog.test.ts',
  'test/unit/coordinator/admin/round-catalog.test.ts',
  'test/unit/coordinator/federation/round-shape.test.ts',
  'test/unit/coordinator/audit/**/*.test.ts',
  'test/unit/proto/masked-input-codec.test.ts',
  'test/unit/proto/status.test.ts',
  'test/integration/next-model-agreement.test.ts',
];

// MUTATION_TESTS=glob,glob narrows the tests to the mutated folder's own unit tests, e.g. for
// crypto/secagg/ (3,108 mutants): `MUTATION_TESTS='test/unit/crypto/**/*.test.ts'`. The site's round
// tests also run SecAgg+ client code, so they would kill more, but each of them costs a whole round per
// mutant; the narrowed run measures what the crypto tests themselves pin down.
const narrowed = process.env['MUTATION_TESTS']?.split(',').map((glob) => glob.trim()).filter((glob) => glob !== '');

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: narrowed !== undefined && narrowed.length > 0 ? narrowed : defaultInclude,
    sequence: { ...base.test?.sequence, sequencer: QuickFirstSequencer },
    // The suite's 60 s per test and hook stay: instrumented code on a shared machine runs several times
    // slower than in `npm test`. A mutant that hangs is stopped earlier by Stryker's own timeout
    // (stryker.config.mjs) or hit limit.
  },
});
