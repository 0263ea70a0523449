/**
 * Fails when the project's TypeScript files import each other in a cycle (the import-graph rule of
 * STYLE.md). Uses the TypeScript compiler's own module resolution over tsconfig.json, follows runtime
 * and type-only imports and re-exports alike, and prints every cycle it finds as a chain of files.
 *   npx tsx scripts/check-import-cycles.ts
 */
import { dirname, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const configPath = ts.findConfigFile(root, ts.sys.fileExists, 'tsconfig.json');
if (configPath === undefined) throw new Error(`no tsconfig.json above ${root}`);
const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (diagnostic) => { throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')); } });
if (config === undefined) throw new Error(`cannot read ${configPath}`);

const files = config.fileNames.filter((file) => file.endsWith('.ts') && !file.includes('/node_modules/'));
const project = new Set(files.map((file) => resolve(file)));
const edges = new Map<string, string[]>();
for (const file of project) {
  const info = ts.preProcessFile(ts.sys.readFile(file) ?? '', true, true);
  const targets: string[] = [];
  for (const reference of info.importedFiles) {
    const resolved = ts.resolveModuleName(reference.fileName, file, config.options, ts.sys).resolvedModule?.resolvedFileName;
    if (resolved !== undefined && project.has(resolve(resolved))) targets.push(resolve(resolved));
  }
  edges.set(file, targets);
}

// Tarjan's strongly connected components: every component with more than one file (or a self-import) is a cycle.
let index = 0;
const indices = new Map<string, number>();
const lowlinks = new Map<string, number>();
const stack: string[] = [];
const onStack = new Set<string>();
const cycles: string[][] = [];
function visit(file: string): void {
  indices.set(file, index);
  lowlinks.set(file, index);
  index += 1;
  stack.push(file);
  onStack.add(file);
  for (const target of edges.get(file) ?? []) {
    if (!indices.has(target)) {
      visit(target);
      lowlinks.set(file, Math.min(lowlinks.get(file) as number, lowlinks.get(target) as number));
    } else if (onStack.has(target)) {
      lowlinks.set(file, Math.min(lowlinks.get(file) as number, indices.get(target) as number));
    }
  }
  if (lowlinks.get(file) === indices.get(file)) {
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop() as string;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || (edges.get(file) ?? []).includes(file)) cycles.push(component);
  }
}
for (const file of project) if (!indices.has(file)) visit(file);

if (cycles.length > 0) {
  for (const cycle of cycles) process.stderr.write(`import cycle among: ${cycle.map((file) => relative(root, file)).sort().join(', ')}\n`);
  process.stderr.write(`${cycles.length} import cycle(s): break them by moving the shared part into a module both import\n`);
  process.exit(1);
}
process.stdout.write(`no import cycles among ${project.size} files (${relative(root, dirname(configPath)) || '.'}/tsconfig.json)\n`);
