/**
 * Peer-supplied strings against an operator's terminal (issue 11, item 10), over mutual TLS:
 *  - the real coordinator refuses a Hello whose device or fedgate version carries terminal escapes or
 *    is oversized, naming the field and the rule (and a plain Hello from the same certificate is served);
 *  - `fedgate participants | status | watch | certs revoke` against a coordinator that sends such
 *    strings anyway (a stand-in Admin server: a compromised or older coordinator) print them escaped,
 *    in text and in --json, and an error it sends is printed escaped too.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Server, status as grpcStatus, type ServerWritableStream } from '@grpc/grpc-js';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAdminCommands } from '../../cli/commands/admin.js';
import { registerCertsCommands } from '../../cli/commands/certs.js';
import { reportError } from '../../cli/run.js';
import { DEFAULT_OPSET } from '../../model/graph/model.js';
import { adminProtocol, type AdminHandlers } from '../../proto/admin-loader.js';
import type { Participant, RoundEventMessage } from '../../proto/admin-messages.js';
import { MIB } from '../../proto/chunking.js';
import { serverCredentials } from '../../proto/credentials.js';
import type { FedgateError } from '../../proto/errors.js';
import { PROTOCOL_VERSION } from '../../proto/messages.js';
import { fromGrpcError } from '../../proto/status.js';
import { GrpcFederation, siteCertificate } from '../support/grpc-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

/** Any character a terminal or a bidi-aware renderer acts on (newlines aside, checked per line). */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const TITLE = '\x1b]0;you have been owned\x07';
const ERASE = '\x1b[1A\x1b[2K\r';

let pki: TestPki;

beforeAll(async () => {
  pki = await createTestPki('fedgate peer-strings CA');
}, 60_000);

describe('the coordinator validates the Hello', () => {
  let h: GrpcFederation;

  beforeAll(async () => {
    h = await GrpcFederation.start({ pki, sites: 1, rounds: 1, startSites: false });
  }, 60_000);

  afterAll(async () => {
    await h?.close();
  });

  /** Opens a Session as site-1 with a Hello carrying `device` and `version`; resolves how it ended (undefined: accepted). */
  async function hello(device: string, version: string): Promise<{ refused: FedgateError | undefined; replied: boolean }> {
    const client = h.client(await siteCertificate(pki, 'site-1'));
    const call = client.session();
    let replied = false;
    const refused = new Promise<FedgateError | undefined>((resolve) => {
      call.on('error', (error) => resolve(fromGrpcError(error, 'Session')));
      call.on('data', (message: { payload?: string }) => {
        if (message.payload !== 'helloReply') return;
        replied = true;
        call.cancel();
        resolve(undefined);
      });
    });
    call.write({
      payload: 'hello',
      hello: {
        protocolVersion: PROTOCOL_VERSION,
        fedgateVersion: version,
        capabilities: { device, onnxOpset: DEFAULT_OPSET, maxModelBytes: 64 * MIB, acceptedTaskHashes: [Buffer.from(h.taskHash, 'hex')] },
      },
    });
    return { refused: await refused, replied };
  }

  it.each([
    ['a device with a window-title escape', `${TITLE}cpu`, '0.1.0', 'Hello.capabilities.device', '\\u{1b}]0;you have been owned\\u{7}'],
    ['a device with a line erase', `cpu${ERASE}`, '0.1.0', 'Hello.capabilities.device', '\\u{1b}[1A'],
    ['a version with an 8-bit CSI', 'cpu', '0.1.0\u009b2J', 'Hello.fedgate_version', '\\u{9b}2J'],
    ['a 4 KB version', 'cpu', `0.1.0-${'x'.repeat(4090)}`, 'Hello.fedgate_version', '(4096 characters)'],
  ])('refuses %s with INVALID_HELLO naming the field and the rule, never echoing the raw text', async (_case, device, version, field, shown) => {
    const { refused } = await hello(device, version);
    expect([refused?.code, refused?.reason]).toEqual(['INVALID_ARGUMENT', 'INVALID_HELLO']);
    expect(refused?.message).toContain(`${field} must be`);
    expect(refused?.message).toContain(shown);
    expect(UNSAFE.test(refused?.message ?? '')).toBe(false);
    expect(h.coordinator.registry.get('site-1')).toBeUndefined();
  });

  it('serves the same certificate with a plain Hello', async () => {
    expect(await hello('cuda:0', '0.2.0-rc.1+build.5')).toEqual({ refused: undefined, replied: true });
  });
});

describe('fedgate operator commands against a coordinator that sends hostile strings', () => {
  let server: Server;
  let port = 0;
  let work: string;

  const participant: Participant = {
    siteId: `site-1${ERASE}site-0`,
    certificateSerial: 'ABCDEF',
    connectedAtUnixMs: Date.now(),
    device: `${TITLE}cpu`,
    fedgateVersion: '0.1.0\u202e',
    certificateNotAfterUnixMs: Date.now(),
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'fedgate-peer-strings-'));
    const operator = await pki.operator('ops');
    await writeFile(join(work, 'ca.pem'), pki.ca.certificatePem);
    await writeFile(join(work, 'ops.pem'), operator.certificatePem);
    await writeFile(join(work, 'ops.key.pem'), operator.privateKeyPem, { mode: 0o600 });
    const event = (type: RoundEventMessage['type']): Partial<RoundEventMessage> => ({
      type,
      roundId: { counter: 7, nonce: Buffer.alloc(16) },
      participants: [participant.siteId, `site-2${TITLE}`],
      abortReason: `NONCE_WITHHELD${ERASE}`,
      atUnixMs: Date.now(),
      seconds: 1,
    });
    const handlers: Partial<AdminHandlers> = {
      GetStatus: (_call, callback) => callback(null, { federationId: `fed${TITLE}`, fedgateVersion: `9.9.9${ERASE}`, committedRounds: 1, roundsConfigured: 2 }),
      ListParticipants: (_call, callback) => callback(null, { participants: [participant] }),
      WatchRounds: (call: ServerWritableStream<unknown, unknown>) => {
        call.write(event('ROUND_EVENT_STARTED'));
        call.write(event('ROUND_EVENT_ABORTED'));
      },
      RevokeParticipant: (call, callback) => {
        const request = call.request as { siteId?: string };
        if (request.siteId === 'site-err') {
          callback({ code: grpcStatus.PERMISSION_DENIED, details: `operator may not${ERASE} revoke${TITLE}` });
          return;
        }
        callback(null, { revoked: [{ certificateSerial: 'AB', commonName: participant.siteId, role: `participant${TITLE}`, alreadyRevoked: false }], crlNumber: 3, closedSessions: [participant.siteId] });
      },
    };
    server = new Server();
    server.addService(adminProtocol().adminService, handlers as AdminHandlers);
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', serverCredentials({ caPem: pki.ca.certificatePem, certPem: pki.coordinator.certificatePem, keyPem: pki.coordinator.privateKeyPem }), (error, bound) =>
        error === null ? resolve(bound) : reject(error),
      ),
    );
  }, 60_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => server?.tryShutdown(() => resolve()));
    await rm(work, { recursive: true, force: true });
  });

  async function fedgate(args: readonly string[]): Promise<string> {
    let text = '';
    const stdout = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    const program = new Command('fedgate').exitOverride().configureOutput({ writeErr: () => undefined });
    registerCertsCommands(program);
    registerAdminCommands(program, { stdout, env: {} });
    await program.parseAsync([...args, '--coordinator', `127.0.0.1:${port}`, '--ca', join(work, 'ca.pem'), '--cert', join(work, 'ops.pem'), '--key', join(work, 'ops.key.pem')], { from: 'user' });
    return text;
  }

  const expectSafe = (text: string): void => {
    for (const line of text.split('\n')) expect(UNSAFE.test(line), JSON.stringify(line)).toBe(false);
  };

  it.each([
    ['participants', ['participants'], '\\u{1b}]0;you have been owned\\u{7}cpu'],
    ['status', ['status'], 'fed\\u{1b}]0;you have been owned\\u{7}'],
    ['watch', ['watch', '--count', '2'], 'NONCE_WITHHELD\\u{1b}[1A\\u{1b}[2K\\u{d}'],
    ['certs revoke', ['certs', 'revoke', '--site', 'site-1'], '(participant\\u{1b}]0;you have been owned\\u{7} site-1\\u{1b}[1A'],
  ])('fedgate %s prints them escaped', async (_name, args, shown) => {
    const text = await fedgate(args);
    expectSafe(text);
    expect(text).toContain(shown);
  });

  it('fedgate participants --json keeps the exact strings as JSON escapes', async () => {
    const json = await fedgate(['participants', '--json']);
    expectSafe(json);
    expect((JSON.parse(json) as { participants: Participant[] }).participants[0]).toMatchObject({ siteId: participant.siteId, device: participant.device, fedgateVersion: participant.fedgateVersion });
  });

  it("prints the coordinator's error details escaped", async () => {
    const error = await fedgate(['certs', 'revoke', '--site', 'site-err']).then(
      () => new Error('expected a failure'),
      (caught: unknown) => caught,
    );
    let printed = '';
    reportError(error, { write: (chunk: string) => ((printed += chunk), true) } as unknown as NodeJS.WritableStream, {});
    expectSafe(printed);
    expect(printed).toContain('operator may not\\u{1b}[1A');
  });
});
