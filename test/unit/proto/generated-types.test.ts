/**
 * The committed proto/generated/ against the generator (scripts/check-proto-types.ts, also run by
 * `npm run lint`): the comparison reports every kind of drift, and the committed tree is what the
 * generator makes from the current .proto files.
 */
import { cpSync, mkdtempSync, rmSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkProtoTypes, generatedDifferences } from '../../../scripts/check-proto-types.js';
import { GENERATED_DIRECTORY } from '../../../scripts/generate-proto-types.js';

const scratch = mkdtempSync(join(tmpdir(), 'fedgate-generated-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the staleness check of proto/generated/', () => {
  it('reports a changed, a missing and an extra file, and nothing for an identical tree', () => {
    const copy = join(scratch, 'copy');
    cpSync(GENERATED_DIRECTORY, copy, { recursive: true });
    expect(generatedDifferences(copy, GENERATED_DIRECTORY)).toEqual([]);
    appendFileSync(join(copy, 'fedgate/v1/Hello.ts'), '// edited by hand\n');
    unlinkSync(join(copy, 'fedgate/v1/Heartbeat.ts'));
    writeFileSync(join(copy, 'fedgate/v1/Removed.ts'), 'export interface Removed {}\n');
    expect(generatedDifferences(copy, GENERATED_DIRECTORY)).toEqual(['missing: fedgate/v1/Heartbeat.ts', 'differs: fedgate/v1/Hello.ts', 'not generated any more: fedgate/v1/Removed.ts']);
  });

  it('finds the committed tree up to date with the .proto files (else: npm run proto:gen)', () => {
    expect(checkProtoTypes()).toEqual([]);
  });
});
