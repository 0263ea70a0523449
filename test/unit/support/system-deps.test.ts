import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSystemDependency, type SystemDependency } from '../../support/system-deps.js';

const missing: SystemDependency = { packages: ['dataset-example'], present: () => false };
const here: SystemDependency = { packages: ['dataset-example'], present: () => true };

describe('checkSystemDependency (the one way a test may skip)', () => {
  it('runs the test when the dependency is present', () => {
    expect(checkSystemDependency(here, {})).toEqual({ skip: false, reason: '' });
    expect(checkSystemDependency(here, { CI: 'true' })).toEqual({ skip: false, reason: '' });
  });

  it('skips on a developer machine, naming the command that installs it', () => {
    const check = checkSystemDependency(missing, {});
    expect(check.skip).toBe(true);
    expect(check.reason).toContain('sudo apt-get update && sudo apt-get install -y dataset-example');
  });

  it('fails under CI=true instead of skipping', () => {
    expect(() => checkSystemDependency(missing, { CI: 'true' })).toThrow(/CI=true and a required system dependency is missing: needs Debian package\(s\) dataset-example/);
  });

  it('names the remedy of a dependency no package provides', () => {
    const check = checkSystemDependency({ packages: [], remedy: 'a CPU-only onnxruntime-node', present: () => false }, {});
    expect(check).toEqual({ skip: true, reason: 'skipped: needs a CPU-only onnxruntime-node' });
  });
});

describe('no test skips any other way', () => {
  const root = join(import.meta.dirname, '..', '..');
  const files = (directory: string): string[] =>
    readdirSync(directory, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? files(join(directory, entry.name)) : entry.name.endsWith('.ts') ? [join(directory, entry.name)] : []));
  const sources = files(root)
    .filter((file) => !file.endsWith(join('support', 'system-deps.ts')) && file !== join(import.meta.dirname, 'system-deps.test.ts'))
    .map((file) => ({ file: relative(root, file), text: readFileSync(file, 'utf8') }));

  it('every skipIf / runIf takes the `.skip` of a checkSystemDependency result', () => {
    const offenders: string[] = [];
    for (const { file, text } of sources) {
      for (const match of text.matchAll(/\.(skipIf|runIf)\(([^)]*)\)/g)) {
        const condition = (match[2] ?? '').trim();
        if (!/^[A-Za-z_$][\w$]*\.skip$/.test(condition) || !text.includes('checkSystemDependency(')) offenders.push(`${file}: ${match[0]}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('no unconditional skip, todo or skip() from inside a test', () => {
    const offenders = sources.flatMap(({ file, text }) => [...text.matchAll(/\b(?:it|test|describe|suite)\.(?:skip|todo|only)\b|\b(?:ctx|context|task)\.skip\(/g)].map((match) => `${file}: ${match[0]}`));
    expect(offenders).toEqual([]);
  });
});
