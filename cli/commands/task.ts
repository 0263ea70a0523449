/** `fedgate task hash FILE`: the SHA-256 a site pins in accepted_tasks after reviewing the task. */
import type { Command } from 'commander';
import { taskHash } from '../../model/task.js';
import { createOutput } from '../output.js';
import { readTaskFile } from '../task-file.js';

export function registerTaskCommands(program: Command): void {
  const task = program.command('task').description('task documents');
  task
    .command('hash <file>')
    .description('print the task hash that sites pin (accepted_tasks in site.yaml)')
    .option('--model <onnx>', 'the forward ONNX model of a task with model.kind onnx')
    .option('--json', 'print one JSON object')
    .action(async (file: string, options: { model?: string; json?: boolean }) => {
      const { task: document, forwardModel } = await readTaskFile(file, options.model);
      const hash = taskHash(document, forwardModel);
      createOutput(options.json === true).result(hash, { taskHash: hash, model: document.model.kind });
    });
}
