/**
 * Fails when an import between the project's TypeScript files breaks a layering rule of DESIGN.md
 * (scripts/import-rules.ts) or closes an import cycle (STYLE.md). Uses the TypeScript compiler's own module
 * resolution over tsconfig.json and follows runtime and type-only imports and re-exports alike. Prints
 * each broken rule as `file -> imported file: rule` and each cycle as the files it joins.
 *   npx tsx scripts/check-imports.ts
 */
import { dirname, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { brokenImportRules, findImportCycles } from './import-rules.js';

const root = resolve(import.meta.dirname, '..');
const configPath = ts.findConfigFile(root, ts.sys.fileExists, 'tsconfig.json');
if (configPath === undefined) throw new Error(`no tsconfig.json above ${root}`);
const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (diagnostic) => { throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')); } });
if (config === undefined) throw new Error(`cannot read ${configPath}`);

/** Repository-relative path with POSIX separators, as the rules expect. */
const toRepoPath = (file: string): string => relative(root, file).split(sep).join('/');

const files = config.fileNames.filter((file) => file.endsWith('.ts') && !file.includes('/node_modules/'));
const project = new Set(files.map((file) => resolve(file)));
const edges = new Map<string, string[]>();
for (const file of project) {
  const info = ts.preProcessFile(ts.sys.readFile(file) ?? '', true, true);
  const targets: string[] = [];
  for (const reference of info.importedFiles) {
    const resolved = ts.resolveModuleName(reference.fileName, file, config.options, ts.sys).resolvedModule?.resolvedFileName;
    if (resolved !== undefined && project.has(resolve(resolved))) targets.push(toRepoPath(resolve(resolved)));
  }
  edges.set(toRepoPath(file), [...new Set(targets)]);
}

const violations: string[] = [];
for (const [importer, targets] of edges) {
  for (const imported of targets) {
    for (const rule of brokenImportRules(importer, imported)) violations.push(`${importer} -> ${imported}: ${rule.description}`);
  }
}
const cycles = findImportCycles(edges);

for (const line of violations.sort()) process.stderr.write(`${line}\n`);
for (const cycle of cycles) process.stderr.write(`import cycle among: ${cycle.join(', ')}\n`);
if (violations.length > 0) process.stderr.write(`${violations.length} import(s) break the layering of DESIGN.md: import through the allowed folder, or move the shared part where both sides may import it\n`);
if (cycles.length > 0) process.stderr.write(`${cycles.length} import cycle(s): break them by moving the shared part into a module both import\n`);
if (violations.length > 0 || cycles.length > 0) process.exit(1);
process.stdout.write(`imports follow the layering, no cycles, among ${project.size} files (${relative(root, dirname(configPath)) || '.'}/tsconfig.json)\n`);
