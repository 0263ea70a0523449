/**
 * Fails when the committed proto/generated/ is not what scripts/generate-proto-types.ts makes from the
 * current .proto files (part of `npm run lint`): it regenerates into a temporary directory and compares
 * the two trees file by file, byte for byte.
 *   npx tsx scripts/check-proto-types.ts
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GENERATED_DIRECTORY, REPOSITORY_ROOT, generateProtoTypes, listFiles } from './generate-proto-types.js';

/** What differs between the committed tree and a fresh one, one line per file; empty when they match. */
export function generatedDifferences(committedDirectory: string, freshDirectory: string): string[] {
  const committed = existsSync(committedDirectory) ? listFiles(committedDirectory) : [];
  const fresh = listFiles(freshDirectory);
  const committedSet = new Set(committed);
  const freshSet = new Set(fresh);
  const differences: string[] = [];
  for (const path of fresh) {
    if (!committedSet.has(path)) differences.push(`missing: ${path}`);
    else if (!readFileSync(join(committedDirectory, path)).equals(readFileSync(join(freshDirectory, path)))) differences.push(`differs: ${path}`);
  }
  for (const path of committed) if (!freshSet.has(path)) differences.push(`not generated any more: ${path}`);
  return differences;
}

/** Regenerates into a temporary directory and compares with `committedDirectory`. */
export function checkProtoTypes(committedDirectory: string = GENERATED_DIRECTORY): string[] {
  const fresh = mkdtempSync(join(tmpdir(), 'fedgate-proto-types-'));
  try {
    generateProtoTypes(fresh);
    return generatedDifferences(committedDirectory, fresh);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const differences = checkProtoTypes();
  if (differences.length > 0) {
    const where = relative(REPOSITORY_ROOT, GENERATED_DIRECTORY);
    console.error(`${where}/ is stale (the .proto files or the generator changed):\n  ${differences.join('\n  ')}\nrun npm run proto:gen and commit ${where}/`);
    process.exitCode = 1;
  }
}
