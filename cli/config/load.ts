/**
 * Reading a YAML config file and validating it once: file -> YAML -> schema -> compiled object. Every
 * problem is reported together, each as `file: key.path: what is wrong (got VALUE)`.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { unknownKeysMessage } from '../../model/key-suggestions.js';
import { ConfigError } from './config-error.js';

export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? 'the file does not exist: check the --config path' : `could not read it (${code ?? String(error)})`;
    throw new ConfigError(`${path}: ${hint}`, { cause: error });
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, source: string): unknown {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    const details = document.errors.map((error) => error.message.split('\n')[0]).join('; ');
    throw new ConfigError(`${source}: not valid YAML: ${details}`);
  }
  return document.toJS() as unknown;
}

/** Validates `value` with `schema`; throws a ConfigError listing every issue with its key path (an unknown key with the key it probably meant). */
export function validateConfig<Schema extends z.ZodType>(schema: Schema, value: unknown, source: string): z.output<Schema> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const key = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
    // A typo (`round:`) names the key probably meant.
    if (issue.code === 'unrecognized_keys') return `  ${key}: ${unknownKeysMessage(schema, issue.path, issue.keys, value)}`;
    const got = describeValue(valueAt(value, issue.path));
    return `  ${key}: ${issue.message}${got === undefined || issue.message.includes('got ') ? '' : ` (got ${got})`}`;
  });
  throw new ConfigError(`${source}: invalid configuration:\n${lines.join('\n')}`);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = root;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function describeValue(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
