/** Reads a task document (YAML or JSON) and, for a task whose model is an ONNX file, that file. */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { externalDataTensorNames } from '../model/onnx/embed.js';
import { parseTaskDocument, type TaskDocument } from '../model/task.js';
import { parseConfigText } from './config/load.js';
import { ConfigError } from './config/config-error.js';

export async function readTaskFile(path: string, modelPath?: string): Promise<{ task: TaskDocument; forwardModel?: Uint8Array }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`task document ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}): check the "task" path`, { cause: error });
  }
  const task = parseTaskDocument(parseConfigText(text, path));
  if (task.model.kind !== 'onnx') return { task };
  if (modelPath === undefined) throw new ConfigError(`task ${path} trains an ONNX model (model.kind: onnx): name the forward .onnx file (\`model:\` in coordinator.yaml, \`--model FILE\` for \`fedgate task\`)`);
  let forwardModel: Uint8Array;
  try {
    forwardModel = new Uint8Array(await readFile(modelPath));
  } catch (error) {
    throw new ConfigError(`forward model ${modelPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
  refuseExternalData(modelPath, forwardModel);
  return { task, forwardModel };
}

/**
 * A model whose weights are in side files (ONNX external data) is refused before its hash is compared or
 * its graph read, with the command that makes it one file: fedgate hands sites one blob pinned by its
 * SHA-256. (decodeModel refuses it too, with the same advice, for callers that do not come through here.)
 */
function refuseExternalData(modelPath: string, bytes: Uint8Array): void {
  let external: string[];
  try {
    external = externalDataTensorNames(bytes);
  } catch {
    return; // not an ONNX model: the task's hash check or the model import says so, naming the file
  }
  if (external.length === 0) return;
  const out = join(dirname(modelPath), 'model-embedded.onnx');
  throw new ConfigError(
    `forward model ${modelPath} keeps the data of ${external.length} tensor(s) (first '${external[0] ?? ''}') in side files (ONNX external data); fedgate distributes a forward model as one file pinned by its SHA-256: run \`fedgate task embed-weights --model ${modelPath} --out ${out}\`, put the SHA-256 it prints in the task's model.modelSha256 and name ${out} instead (\`model:\` in coordinator.yaml, \`--model\` for \`fedgate task\`)`,
  );
}

/** Reads the model file a warm start begins from (coordinator.yaml initial_model, `task hash --initial-model`). */
export async function readInitialModelFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new ConfigError(`${what} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}): name an ONNX model exported by \`fedgate export\` or a models/<hash>.bin of a coordinator state directory`, { cause: error });
  }
}
