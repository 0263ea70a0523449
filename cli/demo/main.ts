#!/usr/bin/env node
/**
 * Entry point of `npm run demo` (see demo.ts). Flags: --json, --rounds N, --plaintext, --out DIR (relative
 * to the directory npm was run from, cli/user-paths.ts), --keep.
 */
import { parseArgs } from 'node:util';
import { userPath } from '../user-paths.js';
import { runDemo } from './demo.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '10' },
    sites: { type: 'string', default: '3' },
    plaintext: { type: 'boolean', default: false },
    out: { type: 'string', default: 'demo-output' },
    keep: { type: 'boolean', default: false },
  },
});

const rounds = Number(values.rounds);
const sites = Number(values.sites);
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(sites) || sites < 3) {
  process.stderr.write('demo: --rounds must be a positive integer and --sites an integer >= 3\n');
  process.exit(2);
}

try {
  const result = await runDemo(
    { rounds, sites, json: values.json, secureAggregation: !values.plaintext, outDirectory: userPath(values.out), timeoutMs: 110_000, keepWorkDirectory: values.keep },
    (line) => process.stdout.write(`${line}\n`),
  );
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`done in ${result.seconds} s: ${result.rounds} secure rounds, held-out accuracy ${(result.final_accuracy * 100).toFixed(2)}%\n`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
