import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  FEDERATION_PROTO_FILE,
  FEDERATION_SERVICE_NAME,
  FedgateError,
  federationProtocol,
  protoRoot,
  type ModelChunk,
  type ParticipantMessage,
  type UploadMaskedInputRequest,
} from '../../../proto/index.js';
import { checkSystemDependency, type SystemDependency } from '../../support/system-deps.js';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('locating the .proto files', () => {
  it('finds <package root>/proto from the source tree and from a compiled dist/ tree', () => {
    expect(protoRoot()).toBe(join(repositoryRoot, 'proto'));
    expect(protoRoot(join(repositoryRoot, 'dist', 'proto'))).toBe(join(repositoryRoot, 'proto'));
    expect(existsSync(join(protoRoot(), FEDERATION_PROTO_FILE))).toBe(true);
  });

  it('says what is missing when started outside the package', () => {
    expect(() => protoRoot(tmpdir())).toThrow(FedgateError);
    expect(() => protoRoot(tmpdir())).toThrow(/cannot find proto\/fedgate\/v1\/federation\.proto in any parent of/);
  });
});

describe('the loaded protocol', () => {
  const { federationService, packageDefinition } = federationProtocol();

  it('defines the three Federation methods with their streaming shapes', () => {
    expect(Object.keys(federationService).sort()).toEqual(['DownloadModel', 'GetCommitRecords', 'Session', 'UploadMaskedInput']);
    expect([federationService.Session?.requestStream, federationService.Session?.responseStream]).toEqual([true, true]);
    expect([federationService.DownloadModel?.requestStream, federationService.DownloadModel?.responseStream]).toEqual([false, true]);
    expect([federationService.UploadMaskedInput?.requestStream, federationService.UploadMaskedInput?.responseStream]).toEqual([true, false]);
    expect(federationService.Session?.path).toBe(`/${FEDERATION_SERVICE_NAME}/Session`);
    expect(packageDefinition['fedgate.v1.Hello']).toBeDefined();
  });

  it('decodes with camelCase names, numbers for 64-bit fields, Buffers for bytes and a oneof discriminant', () => {
    const upload = federationService.UploadMaskedInput;
    if (upload === undefined) throw new Error('UploadMaskedInput missing');
    const header: UploadMaskedInputRequest = {
      part: 'header',
      header: { roundId: { counter: 2 ** 40, nonce: Buffer.alloc(16, 9) }, stage: 'ROUND_STAGE_MASKED_INPUT', totalLength: 3 * 2 ** 30, sha256: Buffer.alloc(32, 1) },
    };
    // toMatchObject: later fields of UploadHeader decode to their defaults without failing this check.
    expect(upload.requestDeserialize(upload.requestSerialize(header))).toMatchObject(header);

    const download = federationService.DownloadModel;
    if (download === undefined) throw new Error('DownloadModel missing');
    const chunk: ModelChunk = { offset: 5, data: Buffer.from('abc'), trailer: null };
    const decoded = download.responseDeserialize(download.responseSerialize(chunk)) as ModelChunk;
    expect(decoded).toEqual(chunk);
    expect(Buffer.isBuffer(decoded.data)).toBe(true);

    const session = federationService.Session;
    if (session === undefined) throw new Error('Session missing');
    const hello: ParticipantMessage = {
      payload: 'hello',
      hello: { protocolVersion: 1, fedgateVersion: '0.1.0', capabilities: { device: 'cpu', onnxOpset: 17, maxModelBytes: 2 ** 33, acceptedTaskHashes: [Buffer.alloc(32, 3)] } },
    };
    expect(session.requestDeserialize(session.requestSerialize(hello))).toEqual(hello);
    expect(session.requestDeserialize(session.requestSerialize({}))).toEqual({});
  });
});

const protoc: SystemDependency = { packages: ['protobuf-compiler'], present: () => existsSync('/usr/bin/protoc') };
const protocCheck = checkSystemDependency(protoc);

describe.skipIf(protocCheck.skip)(`protoc accepts the .proto files ${protocCheck.reason}`, () => {
  it('compiles fedgate/v1/federation.proto with Debian protoc', () => {
    const result = spawnSync('/usr/bin/protoc', ['--proto_path=proto', '--descriptor_set_out=/dev/null', FEDERATION_PROTO_FILE], {
      cwd: repositoryRoot,
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
