/**
 * The dashboard page's files: static/index.html, dashboard.js and dashboard.css next to this module
 * (or, from the compiled dist/cli/dashboard/, in the source tree beside it: tsc copies no assets), and
 * Chart.js's UMD build from node_modules, so the page works offline and loads nothing from a CDN.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StaticAsset {
  readonly file: string;
  readonly contentType: string;
  /** The file's text (the page is templated with the token). */
  readonly text: string;
  readonly body?: Buffer;
}

const PAGE_FILES: readonly (readonly [string, string])[] = [
  ['index.html', 'text/html; charset=utf-8'],
  ['dashboard.js', 'text/javascript; charset=utf-8'],
  ['dashboard.css', 'text/css; charset=utf-8'],
];

export function staticDirectory(moduleUrl: string = import.meta.url): string {
  const candidates = ['./static', '../../../cli/dashboard/static'].map((relative) => fileURLToPath(new URL(relative, moduleUrl)));
  const found = candidates.find((candidate) => existsSync(join(candidate, 'index.html')));
  if (found === undefined) throw new Error(`the dashboard's page files are missing: looked in ${candidates.join(' and ')}; reinstall fedgate`);
  return found;
}

/** Chart.js's browser build (a UMD script defining window.Chart). */
export function chartJsFile(): string {
  // chart.js exports only its module entry points; the UMD build sits beside them in dist/.
  return join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.js');
}

/** Every file the page loads, by URL path, read once. */
export async function staticAssets(): Promise<ReadonlyMap<string, StaticAsset>> {
  const directory = staticDirectory();
  const assets = new Map<string, StaticAsset>();
  for (const [name, contentType] of PAGE_FILES) {
    const file = join(directory, name);
    const body = await readFile(file);
    assets.set(name === 'index.html' ? '/index.html' : `/static/${name}`, { file, contentType, text: body.toString('utf8'), body });
  }
  const chart = chartJsFile();
  const body = await readFile(chart);
  assets.set('/static/chart.umd.js', { file: chart, contentType: 'text/javascript; charset=utf-8', text: '', body });
  return assets;
}
