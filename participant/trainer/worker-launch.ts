/**
 * Where the worker's code is and how to start it. Compiled (dist/, plain `node`), this module is a .js
 * file and the worker is its sibling trainer-worker.js. From TypeScript sources (vitest, tsx), this
 * module's URL ends in .ts and the worker is trainer-worker.ts: a worker thread does not inherit the
 * parent's TypeScript transform, and on Node 20 `execArgv: ['--import', 'tsx']` does not reach a
 * worker's entry module either, so a two-line bootstrap loads the worker through tsx's tsImport API.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface WorkerSpec {
  /** A module URL, or (with `eval`) the source of a bootstrap script. */
  readonly script: URL | string;
  readonly eval: boolean;
}

/** URL of tsx's ESM API module, resolved through tsx's own package.json "exports". */
function tsxEsmApiUrl(moduleUrl: string): string {
  const packageJson = createRequire(moduleUrl).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(packageJson, 'utf8')) as { exports?: Record<string, { import?: { default?: string } }> };
  const entry = manifest.exports?.['./esm/api']?.import?.default;
  if (entry === undefined) throw new Error(`${packageJson} has no "./esm/api" ESM export; tsx >= 4 is needed to run the trainer from TypeScript sources`);
  return pathToFileURL(join(dirname(packageJson), entry)).href;
}

export function trainerWorkerSpec(moduleUrl: string = import.meta.url): WorkerSpec {
  if (!moduleUrl.endsWith('.ts')) return { script: new URL('./trainer-worker.js', moduleUrl), eval: false };
  const worker = new URL('./trainer-worker.ts', moduleUrl).href;
  const api = tsxEsmApiUrl(moduleUrl);
  // A rejection here (tsx missing, syntax error) is unhandled in the worker, which Node reports as the
  // worker's 'error' event: the Trainer turns it into a rejected promise.
  return { script: `import(${JSON.stringify(api)}).then((tsx) => tsx.tsImport(${JSON.stringify(worker)}, ${JSON.stringify(worker)}));`, eval: true };
}
