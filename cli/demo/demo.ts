/**
 * `npm run demo`: a complete local federation on the shipped digits. A throwaway PKI, one coordinator and
 * three participant daemons as separate processes on 127.0.0.1 (real mTLS, real SecAgg+, real ONNX
 * training), non-IID data, 10 secure rounds with a line per round, then the final model exported to
 * ONNX and scored on a held-out split no site ever saw. `--json` ends with one JSON summary line.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { initCertificateAuthority, issueBundle } from '../../certs/index.js';
import { exportModelFromState } from '../../coordinator/index.js';
import { canonicalTaskBytes, parseTaskDocument, taskHash, type PinnedTaskDocument } from '../../model/task.js';
import { pinTask } from '../../model/task-pin.js';
import type { Dataset } from '../../participant/index.js';
import { labelCounts, prepareDemoData, writeCsv } from './demo-data.js';
import { spawnFedgate, stopAll, type FedgateProcess } from './processes.js';

export interface DemoOptions {
  readonly rounds: number;
  readonly sites: number;
  readonly json: boolean;
  readonly secureAggregation: boolean;
  /** Where the exported model goes. */
  readonly outDirectory: string;
  readonly timeoutMs: number;
  readonly keepWorkDirectory: boolean;
}

export interface DemoResult {
  readonly rounds: number;
  readonly participants: number;
  readonly final_accuracy: number;
  /**
   * The final model's accuracy on the sites' own test splits, from the evaluation-only round after the
   * last commit (summed under secure aggregation); null if that round did not complete.
   */
  readonly final_federated_accuracy: number | null;
  readonly secure_aggregation: boolean;
  readonly seconds: number;
  readonly model_path: string;
  readonly task_hash: string;
  /** With --keep: the working directory (CA, configs, coordinator state, site data) left in place. */
  readonly work_directory?: string;
}

/** Pinned: the document names its initial model hash and server optimiser (FedAvg, learning rate 1). */
const DEMO_TASK: PinnedTaskDocument = pinTask(parseTaskDocument({
  formatVersion: 1,
  model: { kind: 'mlp', inputShape: [64], hidden: [64], classes: 10 },
  loss: 'cross_entropy',
  input: { shape: [64], dtype: 'float32' },
  normalization: { scale: 1 / 16, offset: 0 },
  labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  optimizer: { kind: 'sgd', learningRate: 0.1, momentum: 0.9 },
  training: { epochs: 2, batchSize: 32, proximalMu: 0, seed: 7 },
}));

export async function runDemo(options: DemoOptions, print: (line: string) => void): Promise<DemoResult> {
  const started = performance.now();
  const work = await mkdtemp(join(tmpdir(), 'fedgate-demo-'));
  const processes: FedgateProcess[] = [];
  const say = (line: string): void => {
    if (!options.json) print(line);
  };
  try {
    // 1. PKI: a CA, the coordinator's certificate for 127.0.0.1, one bundle per site.
    const caDir = join(work, 'ca');
    await initCertificateAuthority({ dir: caDir, commonName: 'fedgate demo CA', validDays: 3 });
    const coordinatorBundle = await issueBundle({ dir: caDir, role: 'coordinator', name: 'coordinator', hosts: ['127.0.0.1', 'localhost'], validDays: 2 });
    const siteIds = Array.from({ length: options.sites }, (_, i) => `site-${i + 1}`);
    const siteBundles = await Promise.all(siteIds.map((name) => issueBundle({ dir: caDir, role: 'participant', name, validDays: 2 })));

    // 2. Data: a held-out test split and a non-IID share for each site.
    const data = await prepareDemoData(options.sites, 11);
    for (const [index, dataset] of data.sites.entries()) {
      await mkdir(join(work, siteIds[index] as string), { recursive: true });
      await writeCsv(join(work, siteIds[index] as string, 'data.csv'), dataset);
      say(`${siteIds[index]}: ${dataset.count} examples, labels per class [${labelCounts(dataset).join(' ')}]`);
    }

    // 3. Task and coordinator.
    const hash = taskHash(DEMO_TASK);
    await writeFile(join(work, 'task.json'), Buffer.from(canonicalTaskBytes(DEMO_TASK)));
    const stateDir = join(work, 'coordinator-state');
    await writeFile(
      join(work, 'coordinator.yaml'),
      [
        'federation_id: fedgate-demo',
        'listen: "127.0.0.1:0"',
        `tls: {ca: ${JSON.stringify(coordinatorBundle.caCertificatePath)}, cert: ${JSON.stringify(coordinatorBundle.certificatePath)}, key: ${JSON.stringify(coordinatorBundle.privateKeyPath)}, crl: ${JSON.stringify(coordinatorBundle.crlPath)}}`,
        `state_dir: ${JSON.stringify(stateDir)}`,
        'task: task.json',
        `rounds: ${options.rounds}`,
        `participants: {min: ${options.sites}, wait_timeout: 60s}`,
        `secure_aggregation: ${options.secureAggregation}`,
        'secagg: {clip: 1.0, max_weight: 1000, max_eval_examples: 1000}',
        'deadlines: {advertise_keys: 20s, share_keys: 20s, masked_input: 60s, consistency_check: 20s, unmask: 20s, commit: 20s}',
        '',
      ].join('\n'),
    );
    say(`task ${hash.slice(0, 16)}...: MLP 64-64-10, 2 local epochs, SGD with momentum; ${options.secureAggregation ? 'secure aggregation (SecAgg+, complete graph)' : 'PLAINTEXT aggregation'}`);

    let port: number | undefined;
    let portKnown: (port: number) => void = () => undefined;
    const portPromise = new Promise<number>((resolvePort) => {
      portKnown = resolvePort;
    });
    let roundsDone = 0;
    let finalFederatedAccuracy: number | null = null;
    let roundStarted = performance.now();
    const coordinator = spawnFedgate('coordinator', ['coordinator', '--config', join(work, 'coordinator.yaml'), '--exit-when-done'], (entry) => {
      if (entry['msg'] === 'coordinator listening' && typeof entry['port'] === 'number') {
        port = entry['port'];
        portKnown(port);
      }
      const event = entry['event'] as { type?: string; participants?: string[]; survivors?: string[]; metrics?: Record<string, number>; reason?: string; seconds?: number } | undefined;
      if (event?.type === 'round_started') roundStarted = performance.now();
      if (event?.type === 'round_committed') {
        roundsDone += 1;
        const metrics = event.metrics ?? {};
        const examples = Number(metrics['evalExamples'] ?? 0);
        const loss = examples > 0 ? Number(metrics['evalLossSum']) / examples : NaN;
        const accuracy = examples > 0 ? Number(metrics['evalCorrect']) / examples : 0;
        // A round's metrics are of the model it started from (round 1: the initial model).
        say(
          `round ${String(roundsDone).padStart(2)}  participants ${event.survivors?.length ?? 0}/${event.participants?.length ?? 0}  ` +
            `loss ${loss.toFixed(4)}  accuracy ${(accuracy * 100).toFixed(1)}% (of the model it started from)  ${((performance.now() - roundStarted) / 1000).toFixed(2)} s`,
        );
      }
      if (event?.type === 'round_evaluated') {
        const metrics = event.metrics ?? {};
        const examples = Number(metrics['evalExamples'] ?? 0);
        if (examples > 0) {
          finalFederatedAccuracy = Number(metrics['evalCorrect']) / examples;
          say(
            `final model (round ${roundsDone}): federated accuracy ${(finalFederatedAccuracy * 100).toFixed(1)}%, loss ${(Number(metrics['evalLossSum']) / examples).toFixed(4)} ` +
              `on ${examples} examples of the sites' own test splits (evaluation-only round, secure sum)`,
          );
        }
      }
      if (event?.type === 'round_aborted') say(`round aborted (${event.reason ?? 'unknown'}); a new round starts under a new id`);
    });
    processes.push(coordinator);
    const listening = await Promise.race([portPromise, coordinator.exited.then(() => undefined), delay(30_000)]);
    if (listening === undefined) throw new Error(`the coordinator did not start listening:\n${coordinator.tail()}`);

    // 4. Sites: each its own process with its own bundle, data and pinned task.
    for (const [index, siteId] of siteIds.entries()) {
      const bundle = siteBundles[index];
      if (bundle === undefined) continue;
      const siteYaml = join(work, siteId, 'site.yaml');
      await writeFile(
        siteYaml,
        [
          `coordinator: "127.0.0.1:${listening}"`,
          `tls: {ca: ${JSON.stringify(bundle.caCertificatePath)}, cert: ${JSON.stringify(bundle.certificatePath)}, key: ${JSON.stringify(bundle.privateKeyPath)}, crl: ${JSON.stringify(bundle.crlPath)}}`,
          'data: {format: csv, path: data.csv, label_column: label, test_fraction: 0.2}',
          `accepted_tasks: [${hash}]`,
          // Secure rounds: the site.yaml defaults (one tolerated colluder), which the coordinator's automatic
          // t meets (3 for three sites). Plaintext rounds keep t = 2 for three sites, below the default minimum.
          options.secureAggregation
            ? `policy: {min_participants: ${options.sites}, min_tolerated_colluders: 1}`
            : `policy: {min_participants: ${options.sites}, min_threshold: 2, allow_plaintext: true}`,
          'device: cpu',
          `state_dir: ${JSON.stringify(join(work, siteId, 'state'))}`,
          '',
        ].join('\n'),
      );
      // No --rounds: the sites stay for the evaluation-only round after the last commit; the demo stops them.
      processes.push(spawnFedgate(siteId, ['participant', '--config', siteYaml], () => undefined));
    }

    // 5. Wait for the coordinator to finish its rounds and the evaluation of the final model.
    const exit = await Promise.race([coordinator.exited, delay(options.timeoutMs).then(() => 'timeout' as const)]);
    if (exit === 'timeout') throw new Error(`the federation did not finish ${options.rounds} rounds within ${options.timeoutMs / 1000} s (${roundsDone} committed):\n${coordinator.tail()}`);
    if (exit !== 0) throw new Error(`the coordinator exited with code ${String(exit)}:\n${coordinator.tail()}`);
    await stopAll(processes);

    // 6. Export the final model and score it on the held-out split.
    const exported = await exportModelFromState(stateDir, DEMO_TASK, undefined);
    await mkdir(options.outDirectory, { recursive: true });
    const modelPath = resolve(options.outDirectory, 'model.onnx');
    await writeFile(modelPath, exported.onnx);
    const accuracy = await scoreOnnx(await readFile(modelPath), data.holdout);
    say(`exported round ${exported.round} (model ${exported.modelHash.slice(0, 16)}...) to ${modelPath}`);
    say(`held-out accuracy of the exported model: ${(accuracy * 100).toFixed(2)}% on ${data.holdout.count} examples no site saw`);
    if (options.keepWorkDirectory) say(`kept the working directory (CA, configs, coordinator state, site data): ${work}`);
    return {
      rounds: exported.round,
      participants: options.sites,
      final_accuracy: Number(accuracy.toFixed(4)),
      final_federated_accuracy: finalFederatedAccuracy === null ? null : Number((finalFederatedAccuracy as number).toFixed(4)),
      secure_aggregation: options.secureAggregation,
      seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
      model_path: modelPath,
      task_hash: hash,
      ...(options.keepWorkDirectory ? { work_directory: work } : {}),
    };
  } finally {
    await stopAll(processes);
    if (!options.keepWorkDirectory) await rm(work, { recursive: true, force: true });
  }
}

async function scoreOnnx(model: Uint8Array, holdout: Dataset): Promise<number> {
  const session = await ort.InferenceSession.create(model);
  try {
    const width = holdout.features.length / holdout.count;
    const output = await session.run({ input: new ort.Tensor('float32', holdout.features, [holdout.count, width]) });
    const probabilities = output['probabilities']?.data as Float32Array;
    const classes = probabilities.length / holdout.count;
    let correct = 0;
    for (let row = 0; row < holdout.count; row++) {
      let best = 0;
      for (let k = 1; k < classes; k++) if ((probabilities[row * classes + k] as number) > (probabilities[row * classes + best] as number)) best = k;
      if (best === holdout.labels[row]) correct += 1;
    }
    return correct / holdout.count;
  } finally {
    await session.release();
  }
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolveDelay) => setTimeout(() => resolveDelay(undefined), ms).unref());
}
