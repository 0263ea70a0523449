/**
 * `fedgate task hash FILE`: the SHA-256 a site pins in accepted_tasks after reviewing the task. The hash
 * is that of the pinned document: the initial model hash (computed from the model the task builds) and the
 * server optimiser (FedAvg, learning rate 1, unless the file names one) are filled in when the file leaves
 * them out, exactly as the coordinator fills them, so the pin fixes where the chain of models starts.
 * `fedgate task check` (task-check.ts) and `fedgate task embed-weights` (embed-weights.ts) sit beside it.
 */
import type { Command } from 'commander';
import { forwardModelWarnings } from '../../model/import.js';
import { warmStartWeights } from '../../model/initial-weights.js';
import { buildTrainingPlan } from '../../model/plan.js';
import { canonicalTaskBytes, taskHash, type PinnedTaskDocument, type TaskDocument } from '../../model/task.js';
import { pinTask, pinWarmStart } from '../../model/task-pin.js';
import { modelHash } from '../../model/weight-codec.js';
import { ConfigError } from '../config/config-error.js';
import { writeFileAtomic } from '../../platform/index.js';
import { createOutput } from '../output.js';
import { readInitialModelFile, readTaskFile } from '../task-file.js';
import { embedWeights } from './embed-weights.js';
import { checkTask } from './task-check.js';

export function registerTaskCommands(program: Command): void {
  const task = program.command('task').description('task documents');
  task
    .command('hash <file>')
    .description('print the task hash that sites pin (accepted_tasks in site.yaml), with the initial model hash and server optimiser filled in')
    .option('--model <onnx>', 'the forward ONNX model of a task with model.kind onnx')
    .option('--write <out>', 'also write the pinned document (canonical JSON, keys filled in) to this file')
    .option('--initial-model <file>', 'warm start: round 1 starts from this model (an ONNX model from `fedgate export`, or models/<hash>.bin of a state directory) instead of the weights the task builds')
    .option('--json', 'print one JSON object')
    .action(async (file: string, options: { model?: string; write?: string; initialModel?: string; json?: boolean }) => {
      const { task: document, forwardModel } = await readTaskFile(file, options.model);
      const pinned = options.initialModel === undefined ? pinTask(document, forwardModel) : await pinInitialModelFile(document, forwardModel, options.initialModel);
      const hash = taskHash(pinned, forwardModel);
      const output = createOutput(options.json === true);
      const warnings = document.model.kind === 'onnx' && forwardModel !== undefined ? forwardModelWarnings(forwardModel) : [];
      for (const warning of warnings) output.note(`warning: ${warning}`);
      if (options.write !== undefined) await writeFileAtomic(options.write, canonicalTaskBytes(pinned));
      output.result(hash, { taskHash: hash, model: pinned.model.kind, initialModel: pinned.initialModel, serverOptimizer: pinned.serverOptimizer, ...(warnings.length > 0 ? { warnings } : {}) });
      if (options.initialModel !== undefined) {
        output.note(
          `initialModel.sha256 ${pinned.initialModel.sha256} (warm start from ${options.initialModel}; add "initialModel: { sha256: ${pinned.initialModel.sha256}, warmStart: true }" to ${file} and set initial_model in coordinator.yaml to that file)`,
        );
      } else if (document.initialModel === undefined) {
        output.note(`initialModel.sha256 ${pinned.initialModel.sha256} (computed from the task's model; add "initialModel: { sha256: ${pinned.initialModel.sha256} }" to ${file} to keep it in the file)`);
      }
      if (document.serverOptimizer === undefined) {
        output.note(`serverOptimizer ${JSON.stringify(pinned.serverOptimizer)} (the default; the task hash pins it)`);
      }
    });
  task
    .command('check <file>')
    .description('build the training plan and run one training step and one evaluation on random data, so an unsupported op or a model output that does not fit the loss shows now')
    .option('--model <onnx>', 'the forward ONNX model of a task with model.kind onnx')
    .option('--json', 'print one JSON object')
    .action(async (file: string, options: { model?: string; json?: boolean }) => {
      const { task: document, forwardModel } = await readTaskFile(file, options.model);
      const report = await checkTask(document, forwardModel);
      const output = createOutput(options.json === true);
      const warnings = forwardModel !== undefined ? forwardModelWarnings(forwardModel) : [];
      for (const warning of warnings) output.note(`warning: ${warning}`);
      output.result(
        `ok: ${report.loss} on ${report.inputs === undefined ? `[${report.inputShape.join(', ')}]` : report.inputs.map((i) => `${i.name} ${i.dtype} [${i.shape.join(', ')}]`).join(', ')} -> ${report.outputs} output(s), ${report.parameters} parameters; one step on random data: loss ${report.stepLoss.toPrecision(4)}`,
        { ...report, ...(warnings.length > 0 ? { warnings } : {}) },
      );
    });
  task
    .command('embed-weights')
    .description('write a forward ONNX model whose weights are in side files (ONNX external data, onnx.save_model(..., save_as_external_data=True)) as one self-contained file, and print its SHA-256 for the task\'s model.modelSha256')
    .requiredOption('--model <onnx>', 'the ONNX model; its side files are read relative to its directory')
    .requiredOption('--out <file>', 'where to write the self-contained model (written atomically)')
    .option('--json', 'print one JSON object')
    .action(async (options: { model: string; out: string; json?: boolean }) => {
      const result = await embedWeights(options.model, options.out);
      const output = createOutput(options.json === true);
      const taskLine = `model: {kind: onnx, modelSha256: ${result.sha256}}`;
      const what =
        result.embeddedTensors === 0
          ? 'no external data: the model was already self-contained and is copied unchanged'
          : `${result.embeddedTensors} tensor(s) from ${result.sideFiles.length} side file(s) embedded`;
      output.result(`${result.sha256}  ${result.path}\n${taskLine}`, { ...result, taskModel: { kind: 'onnx', modelSha256: result.sha256 } });
      output.note(`${result.path}: ${result.bytes} bytes, ${what}. Put the line above in the task document, name ${result.path} as \`model:\` in coordinator.yaml (\`--model\` for \`fedgate task hash\` and \`task check\`); the side files are no longer needed.`);
    });
}

/** The task pinned to start from the weights in `path`, checked against the task's architecture. */
async function pinInitialModelFile(document: TaskDocument, forwardModel: Uint8Array | undefined, path: string): Promise<PinnedTaskDocument> {
  const bytes = await readInitialModelFile(path, '--initial-model');
  const plan = buildTrainingPlan(document, forwardModel);
  const hash = modelHash(plan, warmStartWeights(bytes, plan));
  if (document.initialModel !== undefined && document.initialModel.sha256 !== hash) {
    throw new ConfigError(`--initial-model ${path} holds model ${hash}, but the task already pins initialModel.sha256 ${document.initialModel.sha256}: remove initialModel from the task, or give the file it names`);
  }
  return pinWarmStart(document, hash, forwardModel);
}
