import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The tests `npm run test:mutation` runs against each mutant of the code it mutates (stryker.config.mjs):
// unit tests of the SecAgg+ state machines, Shamir, the site's round, chain, state and daemon code, plus
// the next-model agreement test (no network, no training). Tests that start gRPC daemons or run whole
// federations (the ledger integration tests train three sites in beforeAll) are left out on purpose: a
// mutant one of them covers would cost seconds to tens of seconds each, and the checks they exercise
// have unit tests here (test/unit/coordinator/audit/ verifies synthetic ledgers; docs/mutation-audit.md).
// Spread, not mergeConfig: mergeConfig concatenates arrays, so base's include ('test/**/*.test.ts')
// would bring every test back.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
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
    ],
    // The suite's 60 s per test and hook stay: instrumented code on a shared machine runs several times
    // slower than in `npm test`. A mutant that hangs is stopped earlier by Stryker's own timeout
    // (stryker.config.mjs) or hit limit.
  },
});
