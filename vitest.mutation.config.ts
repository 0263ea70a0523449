import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

// The tests `npm run test:mutation` runs against each mutant of the code it mutates (stryker.config.mjs):
// unit tests of the SecAgg+ state machines, Shamir, the site's round, chain, state and daemon code, plus
// the next-model agreement test (no network, no training). Tests that start gRPC daemons or run whole
// federations (the ledger integration tests train three sites in beforeAll) are left out on purpose: a
// mutant one of them covers would cost seconds to tens of seconds each, and the checks they exercise
// have unit tests here (test/unit/coordinator/audit/ verifies synthetic ledgers; docs/mutation-audit.md).
export default mergeConfig(
  base,
  defineConfig({
    test: {
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
      // A mutant that makes a loop run forever is stopped by Stryker's hit limit; one that makes a test
      // wait for an event that never comes should fail in seconds, not at the suite's 60 s.
      testTimeout: 20_000,
      hookTimeout: 60_000,
    },
  }),
);
