/**
 * The task's input normalisation (DESIGN.md "The task": normalisation constants are part of the hashed
 * task document, so every site feeds the model identically scaled inputs). Two forms:
 *   { mean, std }      x' = (x - mean) / std, with mean/std given once (all values), per channel
 *                      (exampleShape[0] entries, channel-first images) or per feature;
 *   { scale, offset }  x' = x * scale + offset.
 */
import { type Dataset, featureSize } from './dataset.js';
import { invalidOption } from './errors.js';

export type Normalization = { readonly mean: readonly number[]; readonly std: readonly number[] } | { readonly scale: number; readonly offset: number };

/** Returns a new Dataset whose features are normalised; labels are shared with the input. */
export function normalize(dataset: Dataset, normalization: Normalization): Dataset {
  return { ...dataset, features: normalizeFeatures(dataset.features, dataset.exampleShape, normalization) };
}

/** Normalises a flat row-major feature array of examples of `exampleShape` into a new array. */
export function normalizeFeatures(features: Float32Array, exampleShape: readonly number[], normalization: Normalization): Float32Array {
  const out = new Float32Array(features.length);
  if ('scale' in normalization) {
    const { scale, offset } = normalization;
    if (!Number.isFinite(scale) || !Number.isFinite(offset)) {
      throw invalidOption('INVALID_NORMALIZATION', `normalization.scale and .offset must be finite numbers, got scale ${scale}, offset ${offset}`);
    }
    for (let i = 0; i < features.length; i++) out[i] = (features[i] as number) * scale + offset;
    return out;
  }
  const { mean, std } = normalization;
  const size = featureSize(exampleShape);
  const channels = exampleShape.length >= 2 ? (exampleShape[0] as number) : -1;
  if (mean.length !== std.length) {
    throw invalidOption('INVALID_NORMALIZATION', `normalization.mean has ${mean.length} entries but normalization.std has ${std.length}; expected the same number`);
  }
  // Expand the constants to one (shift, factor) pair per feature position so the loop below is flat.
  let repeat: number;
  if (mean.length === 1) repeat = size;
  else if (mean.length === size) repeat = 1;
  else if (mean.length === channels) repeat = size / channels;
  else {
    const options = channels > 0 ? `1, ${channels} (channels) or ${size} (features)` : `1 or ${size} (features)`;
    throw invalidOption('INVALID_NORMALIZATION', `normalization.mean has ${mean.length} entries for examples of shape [${exampleShape.join(', ')}]; expected ${options}`);
  }
  const shift = new Float32Array(size);
  const factor = new Float32Array(size);
  for (let c = 0; c < mean.length; c++) {
    const m = mean[c] as number;
    const s = std[c] as number;
    if (!Number.isFinite(m)) throw invalidOption('INVALID_NORMALIZATION', `normalization.mean[${c}] must be a finite number, got ${m}`);
    if (!(s > 0) || !Number.isFinite(s)) throw invalidOption('INVALID_NORMALIZATION', `normalization.std[${c}] must be a finite number > 0, got ${s}`);
    shift.fill(m, c * repeat, (c + 1) * repeat);
    factor.fill(1 / s, c * repeat, (c + 1) * repeat);
  }
  for (let base = 0; base < features.length; base += size) {
    for (let j = 0; j < size; j++) out[base + j] = ((features[base + j] as number) - (shift[j] as number)) * (factor[j] as number);
  }
  return out;
}
