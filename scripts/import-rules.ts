/**
 * The layering rules of DESIGN.md ("Dependency direction") as data, checked by scripts/check-imports.ts
 * on every import between two of the project's files. Pure: a rule sees two repository-relative paths
 * (POSIX separators) and nothing else, so test/unit/scripts/import-rules.test.ts can table them.
 *
 *   crypto/, model/   import nothing of ours (node: builtins and npm packages only)
 *   platform/         process-level helpers; imports nothing of ours, importable by all but crypto/, model/
 *   proto/            the wire layer; imports crypto/, model/, platform/ - never a role folder
 *   coordinator/, participant/   never import each other (both import crypto/, model/, proto/, platform/)
 *   cli/              wires everything; reaches coordinator/, participant/, certs/ only through their index.ts
 *   bench/, scripts/, test/      may import anything; nothing outside them imports them
 */

/** Folders whose code ships in the package (everything but the tooling folders). */
export const PRODUCT_FOLDERS = ['crypto', 'model', 'platform', 'proto', 'certs', 'coordinator', 'participant', 'cli'] as const;
/** Folders that use the product and are used by nothing in it. */
export const TOOLING_FOLDERS = ['bench', 'scripts', 'test'] as const;
/** Folders cli/ may reach only through their public `index.ts`. */
export const ROLE_FOLDERS = ['coordinator', 'participant', 'certs'] as const;

export interface ImportRule {
  /** What the rule says, printed after each import that breaks it. */
  readonly description: string;
  /** True when `importer` importing `imported` breaks the rule. */
  readonly breaks: (importer: string, imported: string) => boolean;
}

/** The first path segment: the top-level folder ('' for a file at the repository root). */
export function topFolder(path: string): string {
  const slash = path.indexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}

const isIn = (folders: readonly string[], path: string): boolean => folders.includes(topFolder(path));
const isProduct = (path: string): boolean => isIn(PRODUCT_FOLDERS, path);

export const IMPORT_RULES: readonly ImportRule[] = [
  {
    description: 'crypto/ and model/ import nothing of ours (only node: builtins and npm packages)',
    breaks: (importer, imported) => isIn(['crypto', 'model'], importer) && topFolder(imported) !== topFolder(importer),
  },
  {
    description: 'platform/ imports nothing of ours (only node: builtins and npm packages)',
    breaks: (importer, imported) => topFolder(importer) === 'platform' && topFolder(imported) !== 'platform',
  },
  {
    description: 'coordinator/ and participant/ never import each other',
    breaks: (importer, imported) =>
      (topFolder(importer) === 'coordinator' && topFolder(imported) === 'participant') ||
      (topFolder(importer) === 'participant' && topFolder(imported) === 'coordinator'),
  },
  {
    description: 'proto/ imports no role folder (only crypto/, model/ and platform/)',
    breaks: (importer, imported) => topFolder(importer) === 'proto' && isIn([...ROLE_FOLDERS, 'cli'], imported),
  },
  {
    description: 'only cli/ wires the pieces: nothing else in the product imports cli/',
    breaks: (importer, imported) => isProduct(importer) && topFolder(importer) !== 'cli' && topFolder(imported) === 'cli',
  },
  {
    description: "cli/ reaches coordinator/, participant/ and certs/ only through the folder's public index.ts",
    breaks: (importer, imported) => topFolder(importer) === 'cli' && isIn(ROLE_FOLDERS, imported) && imported !== `${topFolder(imported)}/index.ts`,
  },
  {
    description: 'the product never imports bench/, scripts/ or test/',
    breaks: (importer, imported) => isProduct(importer) && isIn(TOOLING_FOLDERS, imported),
  },
];

/** Every rule the import breaks (empty when it is allowed). */
export function brokenImportRules(importer: string, imported: string): ImportRule[] {
  return IMPORT_RULES.filter((rule) => rule.breaks(importer, imported));
}

/** Strongly connected components with more than one file, or a file importing itself: the import cycles. */
export function findImportCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm, iterative so a deep import chain cannot overflow the stack.
  let nextIndex = 0;
  const indices = new Map<string, number>();
  const lowlinks = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  for (const root of edges.keys()) {
    if (indices.has(root)) continue;
    const work: { file: string; next: number }[] = [{ file: root, next: 0 }];
    indices.set(root, nextIndex);
    lowlinks.set(root, nextIndex);
    nextIndex += 1;
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as { file: string; next: number };
      const targets = edges.get(frame.file) ?? [];
      if (frame.next < targets.length) {
        const target = targets[frame.next] as string;
        frame.next += 1;
        if (!indices.has(target)) {
          indices.set(target, nextIndex);
          lowlinks.set(target, nextIndex);
          nextIndex += 1;
          stack.push(target);
          onStack.add(target);
          work.push({ file: target, next: 0 });
        } else if (onStack.has(target)) {
          lowlinks.set(frame.file, Math.min(lowlinks.get(frame.file) as number, indices.get(target) as number));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) lowlinks.set(parent.file, Math.min(lowlinks.get(parent.file) as number, lowlinks.get(frame.file) as number));
      if (lowlinks.get(frame.file) !== indices.get(frame.file)) continue;
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== frame.file);
      if (component.length > 1 || targets.includes(frame.file)) cycles.push(component.sort());
    }
  }
  return cycles;
}
