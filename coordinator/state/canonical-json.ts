/**
 * Deterministic JSON for stored records (sorted keys, no whitespace), so a record's hash can be recomputed
 * by anyone from the parsed file. Only strings, safe integers, booleans, null, arrays and plain objects are
 * allowed: floats and bigints have no single canonical text and are stored as strings by the callers.
 */
import { StateError } from './state-error.js';

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

export function canonicalJson(value: JsonValue, path = '$'): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new StateError('CORRUPT', `canonical JSON at ${path}: only safe integers are allowed, got ${value}`);
    }
    return String(value);
  }
  if (Array.isArray(value)) {
    return `[${(value as readonly JsonValue[]).map((item, index) => canonicalJson(item, `${path}[${index}]`)).join(',')}]`;
  }
  const object = value as { readonly [key: string]: JsonValue };
  const keys = Object.keys(object).sort();
  const parts = keys.map((key) => {
    const item = object[key];
    if (item === undefined) throw new StateError('CORRUPT', `canonical JSON at ${path}.${key}: undefined is not allowed`);
    return `${JSON.stringify(key)}:${canonicalJson(item, `${path}.${key}`)}`;
  });
  return `{${parts.join(',')}}`;
}
