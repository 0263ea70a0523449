/**
 * `fedgate task embed-weights --model in.onnx --out model.onnx`: a forward model whose weights onnx wrote
 * to side files (ONNX external data: `onnx.save_model(m, path, save_as_external_data=True)`, or any model
 * over 2 GiB of protobuf) becomes one self-contained ONNX file, the one blob a task pins by its SHA-256
 * and sites download by hash. model/onnx/embed.ts checks the entries and rewrites the model; this file
 * only reads the side files.
 *
 * A side file is looked up relative to the model file's directory (the spec's rule). The entries come from
 * whoever wrote the model: locations that could leave the directory are refused by model/onnx before
 * they reach here, and a path that resolves outside it anyway (a symbolic link) is refused here after
 * realpath, so embedding never copies a file from elsewhere (/etc/..., a home directory) into a model
 * that is about to be distributed to every site.
 */
import { closeSync, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { ModelError } from '../../model/errors.js';
import { sha256Hex } from '../../model/digest.js';
import { embedExternalData } from '../../model/onnx/embed.js';
import type { ExternalDataReference, ExternalDataResolver } from '../../model/onnx/external-data.js';
import { writeFileAtomic } from '../../platform/index.js';
import { ConfigError } from '../config/config-error.js';

export interface EmbedWeightsResult {
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
  /** Tensors whose data was read from side files. */
  readonly embeddedTensors: number;
  /** The side files read, as their locations in the model. */
  readonly sideFiles: readonly string[];
}

interface SideFile {
  readonly path: string;
  readonly descriptor: number;
  readonly size: number;
}

const errnoCode = (error: unknown): string => (error as NodeJS.ErrnoException).code ?? String(error);

/** Reads side files relative to `modelPath`'s directory, each opened once; `close` releases them. */
function sideFileReader(modelPath: string): { resolve: ExternalDataResolver; close: () => void; locations: () => string[] } {
  const directory = dirname(resolve(modelPath));
  let realDirectory: string;
  try {
    realDirectory = realpathSync(directory);
  } catch (error) {
    throw new ConfigError(`the directory ${directory} of --model ${modelPath} cannot be resolved (${errnoCode(error)})`, { cause: error });
  }
  const inside = (path: string): boolean => path.startsWith(realDirectory.endsWith(sep) ? realDirectory : `${realDirectory}${sep}`);
  const files = new Map<string, SideFile>();

  function open(reference: ExternalDataReference): SideFile {
    const known = files.get(reference.location);
    if (known !== undefined) return known;
    const path = join(directory, reference.location);
    const what = `side file ${path} (external_data location "${reference.location}" of ${reference.tensor} in ${modelPath})`;
    let real: string;
    try {
      real = realpathSync(path);
    } catch (error) {
      throw new ConfigError(
        errnoCode(error) === 'ENOENT'
          ? `${what} does not exist: copy the data files onnx wrote next to the model into ${directory} (their names are the tensors' locations), or save the model again`
          : `${what} cannot be resolved (${errnoCode(error)})`,
        { cause: error },
      );
    }
    if (!inside(real)) {
      throw new ConfigError(`${what} resolves to ${real}, outside the model's directory ${realDirectory} (a symbolic link?): external data must stay next to the model; copy the data file into ${directory}`);
    }
    let descriptor: number;
    try {
      descriptor = openSync(real, 'r');
    } catch (error) {
      throw new ConfigError(`${what} cannot be read (${errnoCode(error)})`, { cause: error });
    }
    const stats = fstatSync(descriptor);
    if (!stats.isFile()) {
      closeSync(descriptor);
      throw new ConfigError(`${what} is not a regular file; expected the data file onnx wrote`);
    }
    const file = { path, descriptor, size: stats.size };
    files.set(reference.location, file);
    return file;
  }

  function read(reference: ExternalDataReference): Uint8Array {
    const file = open(reference);
    const end = reference.length === undefined ? file.size : reference.offset + reference.length;
    if (reference.offset > file.size || end > file.size) {
      throw new ConfigError(
        `side file ${file.path} has ${file.size} bytes; ${reference.tensor} in ${modelPath} needs bytes ${reference.offset} to ${end} (external_data offset ${reference.offset}${reference.length === undefined ? '' : `, length ${reference.length}`}): the file is truncated or belongs to another save of the model; save the model again`,
      );
    }
    const data = new Uint8Array(Math.max(0, end - reference.offset));
    let done = 0;
    while (done < data.byteLength) {
      let count: number;
      try {
        count = readSync(file.descriptor, data, done, data.byteLength - done, reference.offset + done);
      } catch (error) {
        throw new ConfigError(`side file ${file.path} cannot be read (${errnoCode(error)})`, { cause: error });
      }
      if (count === 0) throw new ConfigError(`side file ${file.path} ended at byte ${reference.offset + done} while reading ${reference.tensor} (did it shrink while fedgate read it?)`);
      done += count;
    }
    return data;
  }

  return {
    resolve: read,
    close: () => {
      for (const file of files.values()) closeSync(file.descriptor);
      files.clear();
    },
    locations: () => [...files.keys()],
  };
}

/** Embeds the external data of the model at `modelPath` and writes the result to `outPath` atomically. */
export async function embedWeights(modelPath: string, outPath: string): Promise<EmbedWeightsResult> {
  let input: Uint8Array;
  try {
    input = new Uint8Array(await readFile(modelPath));
  } catch (error) {
    throw new ConfigError(`--model ${modelPath} cannot be read (${errnoCode(error)})`, { cause: error });
  }
  const reader = sideFileReader(modelPath);
  let model: ReturnType<typeof embedExternalData>;
  let sideFiles: string[];
  try {
    model = embedExternalData(input, reader.resolve);
    sideFiles = reader.locations();
  } catch (error) {
    // model/ names the tensor and what is wrong; say which file it is in.
    if (error instanceof ModelError) throw new ConfigError(`--model ${modelPath}: ${error.message}`, { cause: error });
    throw error;
  } finally {
    reader.close();
  }
  await writeFileAtomic(outPath, model.bytes);
  return { path: outPath, sha256: sha256Hex(model.bytes), bytes: model.bytes.byteLength, embeddedTensors: model.embedded.length, sideFiles };
}
