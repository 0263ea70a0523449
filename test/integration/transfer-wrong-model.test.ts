/**
 * DownloadModel from a coordinator that answers a request for model H with the bytes of another model,
 * correctly chunked and with a correct trailer for what it sent: length and SHA-256 of the transfer all
 * check out, so only the participant's comparison of the trailer's hash with the hash it asked for
 * (proto/transfer.ts, WRONG_MODEL) stops it from training on a model it never chose. Real gRPC over
 * mutual TLS on 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FedgateError,
  MIB,
  channelCredentials,
  clientChannelOptions,
  downloadModel,
  federationProtocol,
  sendModel,
  failStream,
  sha256,
  type FederationClient,
} from '../../proto/index.js';
import { createTestPki } from '../support/pki.js';
import { startScriptedCoordinator, type ScriptedCoordinator } from '../support/scripted-coordinator.js';

const requested = randomBytes(300_000);
const substitute = randomBytes(300_000);
/** What the scripted coordinator serves for each requested hash: the right model, or another one. */
const answers = new Map<string, Buffer>([
  [sha256(requested).toString('hex'), requested],
  [sha256(randomBytes(32)).toString('hex'), substitute],
]);
const swappedHash = [...answers.entries()].find(([, model]) => model === substitute)?.[0] as string;

let coordinator: ScriptedCoordinator;
let client: FederationClient;

beforeAll(async () => {
  const pki = await createTestPki('fedgate wrong-model CA');
  const participant = await pki.participant('site-a');
  coordinator = await startScriptedCoordinator(pki, {
    DownloadModel: (call) => {
      const model = answers.get(call.request.modelHash.toString('hex'));
      if (model === undefined) {
        failStream(call, new FedgateError('NOT_FOUND', 'no such model', { reason: 'MODEL_NOT_FOUND' }));
        return;
      }
      // 64 KiB chunks: the trailer rides on the fifth chunk, after every byte has passed the assembler.
      sendModel(call, model, { chunkBytes: 64 * 1024 }).catch((error: unknown) => failStream(call, error));
    },
  });
  client = new (federationProtocol().FederationClient)(
    coordinator.address,
    channelCredentials({ caPem: pki.ca.certificatePem, certPem: participant.certificatePem, keyPem: participant.privateKeyPem }),
    clientChannelOptions(),
  );
});

afterAll(async () => {
  client.close();
  await coordinator.close();
});

describe('DownloadModel from a coordinator that serves another model', () => {
  it('downloads the requested model when the coordinator serves it', async () => {
    const model = await downloadModel(client, sha256(requested), { maxBytes: MIB });
    expect(model.equals(requested)).toBe(true);
  });

  it('refuses the bytes of another model with WRONG_MODEL, though their length and hash are consistent', async () => {
    const error = await downloadModel(client, Buffer.from(swappedHash, 'hex'), { maxBytes: MIB }).then(
      () => new Error('the participant accepted a model it did not ask for'),
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(FedgateError);
    expect(error).toMatchObject({ code: 'DATA_LOSS', reason: 'WRONG_MODEL' });
    expect((error as FedgateError).message).toContain(`the trailer announces SHA-256 ${sha256(substitute).toString('hex')}, not the model requested`);
  });
});
