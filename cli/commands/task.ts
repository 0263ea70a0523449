/**
 * `fedgate task hash FILE`: the SHA-256 a site pins in accepted_tasks after reviewing the task. The hash
 * is that of the pinned document: the initial model hash (computed from the model the task builds) and the
 * server optimiser (FedAvg, learning rate 1, unless the file names one) are filled in when the file leaves
 * them out, exactly as the coordinator fills them, so the pin fixes where the chain of models starts.
 */
import type { Command } from 'commander';
import { canonicalTaskBytes, taskHash } from '../../model/task.js';
import { pinTask } from '../../model/task-pin.js';
import { writeFileAtomic } from '../../platform/index.js';
import { createOutput } from '../output.js';
import { readTaskFile } from '../task-file.js';

export function registerTaskCommands(program: Command): void {
  const task = program.command('task').description('task documents');
  task
    .command('hash <file>')
    .description('print the task hash that sites pin (accepted_tasks in site.yaml), with the initial model hash and server optimiser filled in')
    .option('--model <onnx>', 'the forward ONNX model of a task with model.kind onnx')
    .option('--write <out>', 'also write the pinned document (canonical JSON, keys filled in) to this file')
    .option('--json', 'print one JSON object')
    .action(async (file: string, options: { model?: string; write?: string; json?: boolean }) => {
      const { task: document, forwardModel } = await readTaskFile(file, options.model);
      const pinned = pinTask(document, forwardModel);
      const hash = taskHash(pinned, forwardModel);
      const output = createOutput(options.json === true);
      if (options.write !== undefined) await writeFileAtomic(options.write, canonicalTaskBytes(pinned));
      output.result(hash, { taskHash: hash, model: pinned.model.kind, initialModel: pinned.initialModel, serverOptimizer: pinned.serverOptimizer });
      if (document.initialModel === undefined) {
        output.note(`initialModel.sha256 ${pinned.initialModel.sha256} (computed from the task's model; add "initialModel: { sha256: ${pinned.initialModel.sha256} }" to ${file} to keep it in the file)`);
      }
      if (document.serverOptimizer === undefined) {
        output.note(`serverOptimizer ${JSON.stringify(pinned.serverOptimizer)} (the default; the task hash pins it)`);
      }
    });
}
