/**
 * "did you mean" for unknown keys of strict zod schemas: every YAML/JSON document fedgate reads (task
 * documents here, coordinator.yaml, site.yaml and operator.yaml in cli/config/) rejects unknown keys so a
 * typo never silently falls back to a default; this says which key was probably meant. Pure: it walks
 * the schema (zod 4's public `_zod.def`) to the object at the issue's path and compares names.
 */
import type { z } from 'zod';

interface SchemaDef {
  readonly type: string;
  readonly shape?: Readonly<Record<string, z.ZodType>>;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly discriminator?: string;
  readonly element?: z.ZodType;
  readonly items?: readonly z.ZodType[];
  readonly valueType?: z.ZodType;
  readonly left?: z.ZodType;
  readonly right?: z.ZodType;
  readonly values?: readonly unknown[];
  readonly getter?: () => z.ZodType;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional', 'success']);

function definition(schema: z.ZodType): SchemaDef {
  return (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
}

/** The schemas `schema` stands for once wrappers, pipes and unions are opened (those that fit `value`). */
function alternatives(schema: z.ZodType, value: unknown, depth = 0): z.ZodType[] {
  if (depth > 32) return [];
  const def = definition(schema);
  if (WRAPPERS.has(def.type) && def.innerType !== undefined) return alternatives(def.innerType, value, depth + 1);
  if (def.type === 'pipe' && def.in !== undefined) return alternatives(def.in, value, depth + 1);
  if (def.type === 'lazy' && def.getter !== undefined) return alternatives(def.getter(), value, depth + 1);
  if (def.type === 'intersection' && def.left !== undefined && def.right !== undefined) {
    return [...alternatives(def.left, value, depth + 1), ...alternatives(def.right, value, depth + 1)];
  }
  if (def.type === 'union' && def.options !== undefined) {
    const options = def.options.flatMap((option) => alternatives(option, value, depth + 1));
    const tag = def.discriminator;
    if (tag === undefined || value === null || typeof value !== 'object') return options;
    // A discriminated union: the member whose tag matches the value's (all of them when none does).
    const chosen = options.filter((option) => {
      const field = definition(option).shape?.[tag];
      return field !== undefined && (alternatives(field, undefined, depth + 1).some((literal) => definition(literal).values?.includes((value as Record<string, unknown>)[tag]) === true));
    });
    return chosen.length > 0 ? chosen : options;
  }
  return [schema];
}

/** The schemas of the child `key` (an object key or an array index). */
function child(schema: z.ZodType, key: PropertyKey, value: unknown): z.ZodType[] {
  return alternatives(schema, value).flatMap((candidate) => {
    const def = definition(candidate);
    if (def.type === 'object') return def.shape?.[String(key)] === undefined ? [] : [def.shape[String(key)] as z.ZodType];
    if (def.type === 'array' && def.element !== undefined) return [def.element];
    if (def.type === 'tuple' && typeof key === 'number') return def.items?.[key] === undefined ? [] : [def.items[key] as z.ZodType];
    if (def.type === 'record' && def.valueType !== undefined) return [def.valueType];
    return [];
  });
}

/** The keys the object schema at `path` accepts, for the document `root` (empty when unknown). */
export function knownKeys(schema: z.ZodType, path: readonly PropertyKey[], root: unknown): string[] {
  let schemas = [schema];
  let value = root;
  for (const key of path) {
    schemas = schemas.flatMap((candidate) => child(candidate, key, value));
    value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  }
  const keys = schemas.flatMap((candidate) => alternatives(candidate, value)).flatMap((candidate) => Object.keys(definition(candidate).shape ?? {}));
  return [...new Set(keys)];
}

/** Same name apart from case and word separators: `stateDir` and `state_dir`. */
function normalise(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '');
}

/** Edit distance with adjacent transpositions (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The candidate `name` was most likely meant as, or undefined when none is close (a third of its letters). */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(normalise(name), normalise(candidate));
    if (best === undefined || distance < best.distance) best = { name: candidate, distance };
  }
  if (best === undefined) return undefined;
  return best.distance <= Math.max(1, Math.floor(normalise(name).length / 3)) ? best.name : undefined;
}

/** ` (did you mean "rounds"?)` for an unknown `key` of the object at `path`, else the keys allowed there. */
export function keyHint(schema: z.ZodType, path: readonly PropertyKey[], key: string, root: unknown): string {
  const known = knownKeys(schema, path, root);
  const meant = closestName(key, known);
  if (meant !== undefined) return ` (did you mean "${meant}"?)`;
  return known.length === 0 ? '' : ` (expected one of ${known.join(', ')})`;
}

/** What to say about the unknown `keys` of the object at `path`: `unknown key "round" (did you mean "rounds"?)`. */
export function unknownKeysMessage(schema: z.ZodType, path: readonly PropertyKey[], keys: readonly string[], root: unknown): string {
  return keys.map((key) => `unknown key "${key}"${keyHint(schema, path, key, root)}`).join('; ');
}
