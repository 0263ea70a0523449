import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

// The tests that exercise the code `npm run test:mutation` mutates (stryker.config.mjs): the SecAgg+
// state machines and their adversarial tests, the site's round and state code, the ledger verifier.
// Every mutant runs the tests that cover it, so the suite here must be fast and must not need the network
// beyond 127.0.0.1.
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: [
        'test/unit/crypto/**/*.test.ts',
        'test/unit/participant/round/**/*.test.ts',
        'test/unit/participant/state/**/*.test.ts',
        'test/unit/participant/chain/**/*.test.ts',
        'test/unit/participant/session-watchdog.test.ts',
        'test/integration/ledger-*.test.ts',
        'test/integration/next-model-agreement.test.ts',
        'test/integration/federation-in-memory.test.ts',
        'test/integration/site-*.test.ts',
        'test/integration/malicious-coordinator*.test.ts',
      ],
    },
  }),
);
