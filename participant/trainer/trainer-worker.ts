/**
 * Entry point of the training worker thread. session.run is synchronous native work; running it here
 * keeps the daemon's event loop (gRPC heartbeats, the coordinator stream) responsive while a site trains
 * (DESIGN.md "Local training with ONNX Runtime").
 *
 * Protocol (protocol.ts): 'init' once, then 'train' / 'evaluate' calls one at a time (the main thread
 * queues them), 'release' to drop a dataset, 'close' to release the sessions and exit. Every failure is
 * answered with a message; nothing thrown here is left unhandled.
 */
import { type MessagePort, type TransferListItem, parentPort } from 'node:worker_threads';
import { TrainerError, toWire } from './errors.js';
import type { FromWorker, SharedDataset, ToWorker } from './protocol.js';
import { TrainingEngine } from './training-engine.js';

function requireParentPort(): MessagePort {
  if (parentPort === null) throw new Error('trainer-worker must run in a worker thread (started by Trainer.create)');
  return parentPort;
}

const port = requireParentPort();

const post = (message: FromWorker, transfer: TransferListItem[] = []): void => port.postMessage(message, transfer);
const datasets = new Map<number, SharedDataset>();
let engine: TrainingEngine | undefined;

function dataset(ref: SharedDataset | number): SharedDataset {
  if (typeof ref !== 'number') {
    datasets.set(ref.id, ref);
    return ref;
  }
  const known = datasets.get(ref);
  if (known === undefined) throw new TrainerError('INTERNAL', 'DATASET_UNKNOWN', `dataset #${ref} was never sent to the training worker`);
  return known;
}

function requireEngine(): TrainingEngine {
  if (engine === undefined) throw new TrainerError('FAILED_PRECONDITION', 'NOT_INITIALIZED', 'the training worker has no plan loaded');
  return engine;
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'init':
      try {
        engine = await TrainingEngine.open(message);
        post({ type: 'ready', info: engine.info });
      } catch (error) {
        post({ type: 'init-failed', error: toWire(error) });
      }
      return;
    case 'train':
      try {
        const outcome = await requireEngine().train(
          dataset(message.dataset),
          message.parameters,
          message.globalParameters,
          message.request,
          message.abortFlag,
          (event) => post({ type: 'progress', callId: message.callId, event }),
        );
        post({ type: 'trained', callId: message.callId, outcome }, [outcome.parameters.buffer as ArrayBuffer]);
      } catch (error) {
        post({ type: 'failed', callId: message.callId, error: toWire(error) });
      }
      return;
    case 'evaluate':
      try {
        const outcome = await requireEngine().evaluate(dataset(message.dataset), message.parameters, message.batchSize);
        post({ type: 'evaluated', callId: message.callId, outcome });
      } catch (error) {
        post({ type: 'failed', callId: message.callId, error: toWire(error) });
      }
      return;
    case 'release':
      datasets.delete(message.datasetId);
      return;
    case 'close':
      datasets.clear();
      try {
        await engine?.dispose();
      } finally {
        engine = undefined;
        post({ type: 'closed' });
        port.close();
      }
      return;
  }
}

// Messages are handled strictly one after another: a 'train' that awaits session.run must not
// interleave with the next call's use of the shared state buffers.
let queue: Promise<void> = Promise.resolve();
port.on('message', (message: ToWorker) => {
  queue = queue.then(() => handle(message));
});
