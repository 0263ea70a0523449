/**
 * The demo's data: the shipped UCI digits, a held-out test split that no site sees, and the rest split
 * non-IID across the sites (Dirichlet label skew), each written as the CSV a site would hold.
 */
import { writeFile } from 'node:fs/promises';
import { loadDigits, partitionDirichlet, subset, trainTestSplit, type Dataset } from '../../participant/index.js';

export interface DemoData {
  readonly holdout: Dataset;
  readonly sites: readonly Dataset[];
}

export async function prepareDemoData(siteCount: number, seed: number): Promise<DemoData> {
  const digits = await loadDigits();
  const { train, test } = trainTestSplit(digits, { testFraction: 0.2, seed });
  const parts = partitionDirichlet(train, { clients: siteCount, alpha: 1, seed: seed + 1 });
  return { holdout: test, sites: parts.map((indices) => subset(train, indices)) };
}

export async function writeCsv(path: string, dataset: Dataset): Promise<void> {
  const width = dataset.features.length / dataset.count;
  const header = [...Array.from({ length: width }, (_, i) => `pixel_${i}`), 'label'].join(',');
  const lines = [header];
  for (let row = 0; row < dataset.count; row++) {
    const values = Array.from(dataset.features.subarray(row * width, (row + 1) * width), (value) => String(value));
    lines.push(`${values.join(',')},${dataset.labels[row]}`);
  }
  await writeFile(path, lines.join('\n') + '\n');
}

export function labelCounts(dataset: Dataset): number[] {
  const counts = new Array<number>(dataset.classes).fill(0);
  for (const label of dataset.labels) counts[label] = (counts[label] ?? 0) + 1;
  return counts;
}
