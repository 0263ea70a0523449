/**
 * The dataset shipped with fedgate (data/digits.csv.gz, see data/README.md): 1,797 8x8 images of
 * handwritten digits from the UCI "Optical Recognition of Handwritten Digits" set, one row per image,
 * 64 pixel counts in 0..16 followed by the digit. Small enough for the demo and for fast tests, real
 * enough that a model trained on it means something.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCsv } from './csv.js';
import type { Dataset } from './dataset.js';

export const DIGITS_CLASSES = 10;
export const DIGITS_EXAMPLE_SHAPE: readonly number[] = [64];
/** Each feature is the number of set pixels in a 4x4 block of the original 32x32 bitmap. */
export const DIGITS_MAX_VALUE = 16;
export const DIGITS_LABELS: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/**
 * Where data/digits.csv.gz is: two levels up from this file when running the TypeScript sources
 * (participant/data/), three when running the compiled output (dist/participant/data/).
 */
export function digitsPath(): string {
  const candidates = ['../../data/digits.csv.gz', '../../../data/digits.csv.gz'].map((relative) => fileURLToPath(new URL(relative, import.meta.url)));
  return candidates.find((path) => existsSync(path)) ?? (candidates[0] as string);
}

/**
 * Loads the shipped digits: features are the raw pixel counts in 0..16 (scale them with the task's
 * normalisation, e.g. { scale: 1/16, offset: 0 }), labels the digits 0..9, exampleShape [64].
 */
export async function loadDigits(path: string = digitsPath()): Promise<Dataset> {
  return loadCsv(path, { classes: DIGITS_CLASSES, header: false, label: -1, exampleShape: DIGITS_EXAMPLE_SHAPE, source: path });
}
