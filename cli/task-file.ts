/** Reads a task document (YAML or JSON) and, for a task whose model is an ONNX file, that file. */
import { readFile } from 'node:fs/promises';
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
  try {
    return { task, forwardModel: new Uint8Array(await readFile(modelPath)) };
  } catch (error) {
    throw new ConfigError(`forward model ${modelPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
}

/** Reads the model file a warm start begins from (coordinator.yaml initial_model, `task hash --initial-model`). */
export async function readInitialModelFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new ConfigError(`${what} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}): name an ONNX model exported by \`fedgate export\` or a models/<hash>.bin of a coordinator state directory`, { cause: error });
  }
}
