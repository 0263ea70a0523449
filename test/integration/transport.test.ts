/**
 * The wire layer over real mutual TLS on 127.0.0.1: chunked transfers at full size, malformed uploads,
 * and every way a caller can be refused (no certificate, foreign CA, expired, revoked, wrong role),
 * plus health checking and server reflection.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:http2';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  credentials as grpcCredentials,
  makeClientConstructor,
  type ChannelCredentials,
  type Client,
  type ClientDuplexStream,
  type ServiceDefinition,
  type ServiceError,
  type UntypedServiceImplementation,
  type handleUnaryCall,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthServiceDefinition } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IssuedCertificate } from '../../certs/index.js';
import {
  AccessControl,
  FEDERATION_ACCESS_POLICY,
  FEDERATION_SERVICE_NAME,
  FLOW_CONTROL_WINDOW_BYTES,
  FedgateError,
  MIB,
  addHealthService,
  addReflectionService,
  bindServer,
  channelCredentials,
  clientChannelOptions,
  createFedgateServer,
  downloadModel,
  failStream,
  federationProtocol,
  fromGrpcError,
  peerIdentity,
  raiseConnectionWindows,
  receiveUpload,
  sendModel,
  serverCredentials,
  sha256,
  shutdownServer,
  toGrpcStatus,
  uploadAck,
  uploadMaskedInput,
  type FederationClient,
  type FederationHandlers,
  type PeerIdentity,
  type UploadMaskedInputRequest,
} from '../../proto/index.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const BIG_BYTES = 64 * MIB;
const UPLOAD_LIMIT = 80 * MIB;
const ROUND = { counter: 7, nonce: Buffer.alloc(16, 7) };
const OPERATOR_SERVICE = 'fedgate.test.OperatorOnly';

/** A stand-in for an operator-only API (the Admin service): raw bytes in and out. */
const operatorService: ServiceDefinition = {
  Ping: {
    path: `/${OPERATOR_SERVICE}/Ping`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (bytes: Buffer) => bytes,
  },
};
type OperatorClient = Client & { Ping(request: Buffer, callback: (error: ServiceError | null, response?: Buffer) => void): void };
const OperatorClient = makeClientConstructor(operatorService, OPERATOR_SERVICE) as unknown as new (
  address: string,
  credentials: ChannelCredentials,
) => OperatorClient;

let pki: TestPki;
let participant: IssuedCertificate;
let operator: IssuedCertificate;
let access: AccessControl;
let address: string;
let stopServer: () => Promise<void>;
const bigModel = randomBytes(BIG_BYTES);
const smallModel = randomBytes(1000);
/** Served in 16 KiB chunks: hundreds of back-pressure waits in one call. */
const chattyModel = randomBytes(4 * MIB);
const CHATTY_CHUNK_BYTES = 16 * 1024;
const models = new Map([bigModel, smallModel, chattyModel].map((model) => [sha256(model).toString('hex'), model]));
const received: { identity: PeerIdentity; sha256: string; length: number }[] = [];
const uploadFailures: FedgateError[] = [];
let uploadsStarted = 0;
const clients: Client[] = [];

function federationClient(certificate: IssuedCertificate): FederationClient {
  const client = new (federationProtocol().FederationClient)(
    address,
    channelCredentials({ caPem: pki.ca.certificatePem, certPem: certificate.certificatePem, keyPem: certificate.privateKeyPem }),
    clientChannelOptions(),
  );
  clients.push(client);
  return client;
}

/** A client built straight from grpc-js, skipping our own start-up checks: what a misconfigured or hostile peer sends. */
function rawFederationClient(channel: ChannelCredentials): FederationClient {
  const client = new (federationProtocol().FederationClient)(address, channel, clientChannelOptions());
  clients.push(client);
  return client;
}

function rawSsl(certificate?: IssuedCertificate): ChannelCredentials {
  const ca = Buffer.from(pki.ca.certificatePem);
  return certificate === undefined
    ? grpcCredentials.createSsl(ca)
    : grpcCredentials.createSsl(ca, Buffer.from(certificate.privateKeyPem), Buffer.from(certificate.certificatePem));
}

async function expectFailure(promise: Promise<unknown>): Promise<FedgateError> {
  const error = await promise.then(
    () => new Error('expected the call to fail'),
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(FedgateError);
  return error as FedgateError;
}

const smallHash = sha256(smallModel);
const fetchSmall = (client: FederationClient): Promise<Buffer> => downloadModel(client, smallHash, { maxBytes: MIB });

beforeAll(async () => {
  pki = await createTestPki();
  [participant, operator] = await Promise.all([pki.participant('site-a'), pki.operator('ops')]);
  access = new AccessControl({ policy: { ...FEDERATION_ACCESS_POLICY, [OPERATOR_SERVICE]: ['operator'] } });
  const server = createFedgateServer({ access });
  const handlers: FederationHandlers = {
    Session: (call) => failStream(call, new FedgateError('UNIMPLEMENTED', 'Session is not part of this test')),
    GetCommitRecords: (call) => failStream(call, new FedgateError('UNIMPLEMENTED', 'GetCommitRecords is not part of this test')),
    DownloadModel: (call) => {
      const model = models.get(call.request.modelHash.toString('hex'));
      if (model === undefined) {
        failStream(call, new FedgateError('NOT_FOUND', 'no model with that hash', { reason: 'MODEL_NOT_FOUND' }));
        return;
      }
      sendModel(call, model, model === chattyModel ? { chunkBytes: CHATTY_CHUNK_BYTES } : {}).catch((error: unknown) => failStream(call, error));
    },
    UploadMaskedInput: (call, callback) => {
      const identity = peerIdentity(call);
      uploadsStarted += 1;
      receiveUpload(call, { maxBytes: UPLOAD_LIMIT }).then(
        (upload) => {
          received.push({ identity, sha256: sha256(upload.payload).toString('hex'), length: upload.payload.length });
          callback(null, uploadAck(upload));
        },
        (error: unknown) => {
          if (error instanceof FedgateError) uploadFailures.push(error);
          callback(toGrpcStatus(error));
        },
      );
    },
  };
  server.addService(federationProtocol().federationService, handlers);
  const ping: handleUnaryCall<Buffer, Buffer> = (call, callback) => callback(null, Buffer.from(`pong ${peerIdentity(call).siteId}`));
  server.addService(operatorService, { Ping: ping } satisfies UntypedServiceImplementation);
  addHealthService(server, [FEDERATION_SERVICE_NAME]);
  addReflectionService(server, federationProtocol().packageDefinition);
  const port = await bindServer(
    server,
    '127.0.0.1:0',
    serverCredentials({ caPem: pki.ca.certificatePem, certPem: pki.coordinator.certificatePem, keyPem: pki.coordinator.privateKeyPem }),
  );
  address = `127.0.0.1:${port}`;
  stopServer = () => shutdownServer(server, 2000);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await stopServer();
});

describe('chunked transfers over mutual TLS', () => {
  it('downloads a 64 MiB model in ~1 MiB chunks with its hash verified', async () => {
    const model = await downloadModel(federationClient(participant), sha256(bigModel), { maxBytes: BIG_BYTES });
    expect(model.length).toBe(BIG_BYTES);
    expect(model.equals(bigModel)).toBe(true);
  });

  it('uploads a 64 MiB masked input that the coordinator receives intact, attributed to the certificate', async () => {
    const payload = randomBytes(BIG_BYTES);
    const ack = await uploadMaskedInput(federationClient(participant), { roundId: ROUND, stage: 'ROUND_STAGE_MASKED_INPUT' }, payload);
    expect(ack.receivedLength).toBe(BIG_BYTES);
    expect(ack.sha256.equals(sha256(payload))).toBe(true);
    expect(ack.roundId?.counter).toBe(7);
    expect(received.at(-1)).toEqual({
      identity: { siteId: 'site-a', role: 'participant', serial: participant.serial },
      sha256: sha256(payload).toString('hex'),
      length: BIG_BYTES,
    });
  });

  it('refuses a model download larger than the caller accepts, and an unknown model', async () => {
    const client = federationClient(participant);
    const tooBig = await expectFailure(downloadModel(client, sha256(bigModel), { maxBytes: 10 * MIB }));
    expect(tooBig.code).toBe('RESOURCE_EXHAUSTED');
    const unknown = await expectFailure(downloadModel(client, Buffer.alloc(32), { maxBytes: MIB }));
    expect(unknown.code).toBe('NOT_FOUND');
    expect(unknown.reason).toBe('MODEL_NOT_FOUND');
    expect(unknown.message).toMatch(/^DownloadModel\(model 0{16}\.\.\.\) failed with NOT_FOUND: no model with that hash/);
  });

  it('waits for back-pressure on both sides without leaking listeners', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const client = federationClient(participant);
      expect((await downloadModel(client, sha256(chattyModel), { maxBytes: 4 * MIB })).equals(chattyModel)).toBe(true);
      const payload = randomBytes(4 * MIB);
      const ack = await uploadMaskedInput(client, { roundId: ROUND, stage: 'ROUND_STAGE_MASKED_INPUT' }, payload, { chunkBytes: CHATTY_CHUNK_BYTES });
      expect(ack.sha256.equals(sha256(payload))).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('ends the coordinator side of an upload the client cancels half-way', async () => {
    const client = federationClient(participant);
    const [failuresBefore, startedBefore] = [uploadFailures.length, uploadsStarted];
    const payload = randomBytes(8 * MIB);
    const call = client.uploadMaskedInput(() => undefined);
    call.on('error', () => undefined);
    call.write({ part: 'header', header: { roundId: ROUND, stage: 'ROUND_STAGE_MASKED_INPUT', totalLength: payload.length, sha256: sha256(payload) } });
    call.write({ part: 'chunk', chunk: { offset: 0, data: payload.subarray(0, MIB) } });
    await vi.waitFor(() => expect(uploadsStarted).toBe(startedBefore + 1), { timeout: 10_000 });
    call.cancel();
    await vi.waitFor(() => expect(uploadFailures.length).toBe(failuresBefore + 1), { timeout: 10_000 });
    // Depending on which the server sees first - the cancellation or the end of the half-sent stream - the
    // upload ends as CANCELLED or as too short; either way it ends and nothing partial is accepted.
    expect([
      ['CANCELLED', 'CLIENT_CANCELLED'],
      ['INVALID_ARGUMENT', 'TRANSFER_UNDER_LENGTH'],
    ]).toContainEqual([uploadFailures.at(-1)?.code, uploadFailures.at(-1)?.reason]);
  });

  /** Sends hand-made upload messages and returns the status the coordinator answered with. */
  function rawUpload(messages: readonly UploadMaskedInputRequest[]): Promise<FedgateError> {
    const client = federationClient(participant);
    return expectFailure(
      new Promise((resolve, reject) => {
        const call = client.uploadMaskedInput((error, ack) => (error === null ? resolve(ack) : reject(fromGrpcError(error, 'UploadMaskedInput'))));
        for (const message of messages) call.write(message);
        call.end();
      }),
    );
  }

  const data = randomBytes(3000);
  const header = (totalLength: number, hash: Buffer) =>
    ({ part: 'header', header: { roundId: ROUND, stage: 'ROUND_STAGE_MASKED_INPUT', totalLength, sha256: hash } }) as const;
  const chunk = (offset: number, bytes: Buffer) => ({ part: 'chunk', chunk: { offset, data: bytes } }) as const;

  it.each([
    ['a wrong hash', [header(3000, sha256(randomBytes(8))), chunk(0, data)], 'DATA_LOSS', 'HASH_MISMATCH', /SHA-256 of the 3000 received bytes is [0-9a-f]{64}, expected/],
    ['fewer bytes than declared', [header(4000, sha256(data)), chunk(0, data)], 'INVALID_ARGUMENT', 'TRANSFER_UNDER_LENGTH', /received 3000 bytes but the total length is 4000/],
    ['more bytes than declared', [header(2000, sha256(data)), chunk(0, data)], 'INVALID_ARGUMENT', 'TRANSFER_OVER_LENGTH', /runs past the declared total length 2000/],
    ['a declared length above the limit', [header(UPLOAD_LIMIT + 1, sha256(data))], 'RESOURCE_EXHAUSTED', 'TRANSFER_TOO_LARGE', /exceeds the limit of 83886080 bytes/],
    ['a chunk before the header', [chunk(0, data)], 'INVALID_ARGUMENT', 'HEADER_MISSING', /chunk arrived before the header/],
    ['an out-of-order chunk', [header(3000, sha256(data)), chunk(1000, data)], 'INVALID_ARGUMENT', 'OUT_OF_ORDER_CHUNK', /offset must be 0/],
  ])('rejects an upload with %s', async (_case, messages, code, reason, message) => {
    const error = await rawUpload(messages);
    expect(error.code).toBe(code);
    expect(error.reason).toBe(reason);
    expect(error.message).toMatch(/^UploadMaskedInput failed with /);
    expect(error.message).toMatch(message);
  });
});

describe('HTTP/2 flow control', () => {
  it("raises the server's connection receive window beyond HTTP/2's 64 KiB, so uploads are not throttled", async () => {
    const session = connect(`https://${address}`, {
      ca: pki.ca.certificatePem,
      cert: participant.certificatePem,
      key: participant.privateKeyPem,
      servername: '127.0.0.1',
    });
    try {
      await once(session, 'remoteSettings');
      // The server's WINDOW_UPDATE for the connection follows its SETTINGS frame.
      await vi.waitFor(() => expect(session.state.remoteWindowSize).toBe(FLOW_CONTROL_WINDOW_BYTES), { timeout: 5000 });
      expect(session.remoteSettings.initialWindowSize).toBe(FLOW_CONTROL_WINDOW_BYTES);
    } finally {
      session.destroy();
    }
  });

  it('reports whether a server could be given the larger window', () => {
    const server = createFedgateServer({ access });
    expect(raiseConnectionWindows(server, MIB)).toBe(true);
    expect(raiseConnectionWindows({} as Parameters<typeof raiseConnectionWindows>[0], MIB)).toBe(false);
  });
});

describe('authentication and authorization', () => {
  it('refuses a client without a certificate', async () => {
    const error = await expectFailure(fetchSmall(rawFederationClient(rawSsl())));
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(error.message).toMatch(/no verified client certificate on this connection/);
  });

  it('refuses a certificate issued by another CA', async () => {
    const foreign = await (await createTestPki('foreign CA')).participant('site-a');
    const error = await expectFailure(fetchSmall(rawFederationClient(rawSsl(foreign))));
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(error.reason).toBe('NO_VERIFIED_CERTIFICATE');
  });

  it('refuses an expired certificate, and channelCredentials refuses to use one', async () => {
    const expired = await pki.expiredParticipant();
    const error = await expectFailure(fetchSmall(rawFederationClient(rawSsl(expired))));
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(() =>
      channelCredentials({ caPem: pki.ca.certificatePem, certPem: expired.certificatePem, keyPem: expired.privateKeyPem }),
    ).toThrow(/certificate of OU=participant, CN=site-expired is valid from .* not now/);
  });

  it('refuses a revoked serial from the next call on, once the revocation set is swapped', async () => {
    const victim = await pki.participant('site-revoked');
    const client = federationClient(victim);
    expect((await fetchSmall(client)).equals(smallModel)).toBe(true);
    access.replaceRevokedSerials([victim.serial.toLowerCase()]);
    try {
      const error = await expectFailure(fetchSmall(client));
      expect(error.code).toBe('UNAUTHENTICATED');
      expect(error.reason).toBe('CERTIFICATE_REVOKED');
      expect(error.message).toContain(`certificate serial ${victim.serial} of participant site-revoked has been revoked`);
      expect((await fetchSmall(federationClient(participant))).equals(smallModel)).toBe(true);
    } finally {
      access.replaceRevokedSerials([]);
    }
    expect((await fetchSmall(client)).equals(smallModel)).toBe(true);
  });

  it('lets a participant holding the CRL refuse a revoked coordinator certificate', async () => {
    const withCrl = (crlPem: string): FederationClient =>
      rawFederationClient(
        channelCredentials({ caPem: pki.ca.certificatePem, certPem: participant.certificatePem, keyPem: participant.privateKeyPem, crlPem }),
      );
    expect((await fetchSmall(withCrl(pki.crl([])))).equals(smallModel)).toBe(true);
    const error = await expectFailure(fetchSmall(withCrl(pki.crl([pki.coordinator.serial]))));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/certificate revoked/i);
  });

  it('keeps operator-only methods from participants and the federation service from operators', async () => {
    const ping = (certificate: IssuedCertificate): Promise<Buffer> => {
      const client = new OperatorClient(
        address,
        channelCredentials({ caPem: pki.ca.certificatePem, certPem: certificate.certificatePem, keyPem: certificate.privateKeyPem }),
      );
      clients.push(client);
      return new Promise((resolve, reject) =>
        client.Ping(Buffer.from('ping'), (error, response) => (error === null && response !== undefined ? resolve(response) : reject(fromGrpcError(error, 'Ping')))),
      );
    };
    const denied = await expectFailure(ping(participant));
    expect(denied.code).toBe('PERMISSION_DENIED');
    expect(denied.reason).toBe('ROLE_NOT_ALLOWED');
    expect(denied.message).toContain(`participant site-a may not call /${OPERATOR_SERVICE}/Ping: it is reserved for role operator`);
    expect((await ping(operator)).toString()).toBe('pong ops');
    const federationDenied = await expectFailure(fetchSmall(federationClient(operator)));
    expect(federationDenied.code).toBe('PERMISSION_DENIED');
  });
});

describe('health checking and reflection', () => {
  it('reports SERVING for the server and the federation service', async () => {
    const HealthClient = makeClientConstructor(healthServiceDefinition, 'grpc.health.v1.Health');
    const client = new HealthClient(
      address,
      channelCredentials({ caPem: pki.ca.certificatePem, certPem: participant.certificatePem, keyPem: participant.privateKeyPem }),
    ) as unknown as Client & { check(request: { service: string }, callback: (error: ServiceError | null, response?: { status: string }) => void): void };
    clients.push(client);
    for (const service of ['', FEDERATION_SERVICE_NAME]) {
      const response = await new Promise<{ status: string } | undefined>((resolve, reject) =>
        client.check({ service }, (error, reply) => (error === null ? resolve(reply) : reject(error))),
      );
      expect(response?.status).toBe('SERVING');
    }
  });

  it('lists the federation service through server reflection', async () => {
    const reflectionProto = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');
    const definition = loadSync(reflectionProto, { keepCase: true, oneofs: true, defaults: true });
    const ReflectionClient = makeClientConstructor(definition['grpc.reflection.v1.ServerReflection'] as ServiceDefinition, 'ServerReflection');
    const client = new ReflectionClient(
      address,
      channelCredentials({ caPem: pki.ca.certificatePem, certPem: operator.certificatePem, keyPem: operator.privateKeyPem }),
    ) as unknown as Client & { ServerReflectionInfo(): ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }> };
    clients.push(client);
    const stream = client.ServerReflectionInfo();
    const reply = new Promise<string[]>((resolve, reject) => {
      stream.once('data', (message) => resolve((message.list_services_response?.service ?? []).map((service: { name: string }) => service.name)));
      stream.once('error', reject);
    });
    stream.write({ list_services: '' });
    stream.end();
    expect(await reply).toContain(FEDERATION_SERVICE_NAME);
  });
});
