/**
 * The Admin API over real mutual TLS on 127.0.0.1, against a running federation: a coordinator with
 * the federation's CA directory and four participant daemons training on the shipped digits.
 *
 * The federation runs once (beforeAll) through a scripted story, and the tests then check what each
 * part of it produced:
 *   round 1  commits (the sites connected first);
 *   round 2  site-4 is revoked by site id while the others train: its session is closed and the round
 *            commits without it;
 *   round 3  site-3 is revoked by serial while its nonce is in flight (the coordinator has it, the Graph
 *            is not out yet): the Graph carries the serial, and the other sites refuse the round because
 *            a neighbour's certificate is revoked;
 *   round 4  commits with site-1 and site-2 (the third and last committed round).
 * Then the coordinator restarts on the same state directory without its CA directory.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import { service as healthServiceDefinition } from 'grpc-health-check';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyCertificateRevocationList } from '../../certs/index.js';
import type { GetStatusResponse, Participant, RoundEventMessage } from '../../coordinator/admin/index.js';
import type { CoordinatorToSite, SiteToCoordinator } from '../../coordinator/round/round-messages.js';
import type { GraphMessage } from '../../crypto/secagg/messages.js';
import { DEFAULT_OPSET } from '../../model/graph/model.js';
import { ADMIN_SERVICE_NAME, adminProtocol } from '../../proto/admin-loader.js';
import { channelCredentials, clientChannelOptions, downloadModel, federationProtocol, FedgateError, PROTOCOL_VERSION, type CoordinatorMessage__Output } from '../../proto/index.js';
import { createAdminFederation, type AdminFederation, type Credentials } from '../support/admin-federation.js';
import type { RunningParticipant } from '../../participant/daemon/participant-app.js';
import { expectFailure, listReflectedServices } from '../support/admin-support.js';

let h: AdminFederation;
const events: RoundEventMessage[] = [];
const graphs: { counter: number; siteId: string; message: GraphMessage }[] = [];
const refusals: { counter: number; siteId: string; reason: string }[] = [];
let midRound: { status: GetStatusResponse; participants: readonly Participant[] } | undefined;
/** The participant daemons of sites 1-4, in order. */
const daemons: RunningParticipant[] = [];
let siteFourRevocation: Promise<Awaited<ReturnType<ReturnType<AdminFederation['operatorClient']>['revoke']>>> | undefined;
let siteThreeRevocation: Promise<unknown> | undefined;
let watchEnded: Promise<void>;
const stopWatching = new AbortController();

const site = (index: number): Credentials => h.sites[index] as Credentials;
/** The counter part of a 24-byte round id (DESIGN.md, "The round id"). */
const counterOf = (roundId: Uint8Array): number => Number(Buffer.from(roundId).readBigUInt64BE(0));

beforeAll(async () => {
  h = await createAdminFederation(4);
  const coordinator = await h.startCoordinator({ rounds: 3, minParticipants: 2 });
  const operator = h.operatorClient();
  watchEnded = operator.watch((event) => events.push(event), { signal: stopWatching.signal });
  await operator.status(); // the channel is up before any site connects, so the watch sees round 1 start

  // Round 2: revoke site-4 when its shares are about to be delivered (it is in U2, not yet training).
  const registry = coordinator.registry;
  const send = registry.send.bind(registry);
  registry.send = (siteId: string, message: CoordinatorToSite): void => {
    if (message.kind === 'stage' && message.message.stage === 'graph') graphs.push({ counter: counterOf(message.message.roundId), siteId, message: message.message });
    if (siteFourRevocation === undefined && siteId === 'site-4' && message.kind === 'stage' && message.message.stage === 'share_delivery' && coordinator.federation.committedRounds === 1) {
      siteFourRevocation = (async () => {
        midRound = { status: await operator.status(), participants: await operator.participants() };
        return operator.revoke({ siteId: 'site-4' });
      })();
      void siteFourRevocation.finally(() => send(siteId, message));
      return;
    }
    send(siteId, message);
  };

  // Round 3: hold site-3's nonce until the revocation is live, then hand it over before its session closes.
  const federation = coordinator.federation;
  const receive = federation.receive.bind(federation);
  federation.receive = (siteId: string, message: SiteToCoordinator): void => {
    if (message.kind === 'refusal') refusals.push({ counter: counterOf(message.roundId), siteId, reason: message.reason });
    if (siteThreeRevocation === undefined && siteId === 'site-3' && message.kind === 'stage' && message.message.stage === 'nonce_reveal' && federation.committedRounds === 2) {
      let delivered = false;
      coordinator.revocations.onChange((serials) => {
        if (delivered || !serials.has(site(2).serial)) return;
        delivered = true;
        receive(siteId, message);
      });
      siteThreeRevocation = operator.revoke({ serial: site(2).serial.toLowerCase() });
      return;
    }
    receive(siteId, message);
  };

  for (let index = 0; index < 4; index++) daemons.push(h.startSite(index));
  await coordinator.done;
  // The last committed event travels to the watcher after `done`; wait for it before the tests look.
  const deadline = Date.now() + 10_000;
  while (events.filter((event) => event.type === 'ROUND_EVENT_COMMITTED').length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}, 180_000);

afterAll(async () => {
  stopWatching.abort();
  await watchEnded?.catch(() => undefined);
  await h?.close();
});

/** A Federation-service call made with `credentials`: downloads the current model. */
function federationCall(credentials: Credentials): Promise<Buffer> {
  const client = new (federationProtocol().FederationClient)(h.address(), channelCredentials({ caPem: h.caPem, certPem: credentials.certPem, keyPem: credentials.keyPem }), clientChannelOptions());
  return downloadModel(client, Buffer.from(h.coordinator.federation.currentModelHash, 'hex'), { maxBytes: 1 << 20 }).finally(() => client.close());
}

describe('reading the federation', () => {
  it('GetStatus reports identity, progress and the current model, and the open round while one runs', async () => {
    const status = await h.operatorClient().status();
    expect(status.federationId).toBe('admin-test');
    expect(status.taskHash.toString('hex')).toBe(h.coordinator.taskHash);
    expect([status.committedRounds, status.roundsConfigured, status.minParticipants]).toEqual([3, 3, 2]);
    expect(status.currentModelHash.toString('hex')).toBe(h.coordinator.federation.currentModelHash);
    expect(status.secureAggregation).toBe(true);
    expect(status.openRound).toBeNull();
    expect(status.connectedParticipants).toBe(2);
    expect([...(midRound?.status.openRound?.participants ?? [])].sort()).toEqual(['site-1', 'site-2', 'site-3', 'site-4']);
    expect(midRound?.status.committedRounds).toBe(1);
    expect(midRound?.status.openRound?.roundId?.counter).toBe(2);
  });

  it('ListParticipants lists the connected sites with the serial, device and version of their session', async () => {
    expect(midRound?.participants.map((participant) => [participant.siteId, participant.certificateSerial])).toEqual(h.sites.map((credentials) => [credentials.name, credentials.serial]));
    const now = await h.operatorClient().participants();
    expect(now.map((participant) => participant.siteId)).toEqual(['site-1', 'site-2']);
    for (const participant of now) {
      expect(participant.device).toBe('cpu');
      expect(participant.fedgateVersion).toBe('0.1.0');
      expect(participant.certificateNotAfterUnixMs).toBe(Date.parse(new X509Certificate(site(0).certPem).validTo));
    }
  });

  it('ListRounds pages through the ledger in order or newest first, with survivors, signers and metrics', async () => {
    const client = h.operatorClient();
    const first = await client.roundsPage(2, '', false);
    expect(first.rounds.map((round) => round.sequence)).toEqual([1, 2]);
    expect(first.totalRounds).toBe(3);
    const second = await client.roundsPage(2, first.nextPageToken, false);
    expect(second.rounds.map((round) => round.sequence)).toEqual([3]);
    expect(second.nextPageToken).toBe('');
    expect((await client.rounds({ newestFirst: true })).map((round) => round.sequence)).toEqual([3, 2, 1]);
    const [, roundTwo, roundThree] = await client.rounds();
    expect([...(roundTwo?.participants ?? [])].sort()).toEqual(['site-1', 'site-2', 'site-3', 'site-4']);
    expect([...(roundTwo?.survivors ?? [])].sort()).toEqual(['site-1', 'site-2', 'site-3']);
    expect([...(roundTwo?.signers ?? [])].sort()).toEqual(['site-1', 'site-2', 'site-3']);
    expect([...(roundThree?.survivors ?? [])].sort()).toEqual(['site-1', 'site-2']);
    expect(roundThree?.previousModelHash.equals(roundTwo?.modelHash ?? Buffer.alloc(0))).toBe(true);
    expect(roundThree?.metrics?.evalExamples).toBeGreaterThan(0);
    expect(roundThree?.metrics?.evalAccuracy).toBeCloseTo((roundThree?.metrics?.evalCorrect ?? 0) / (roundThree?.metrics?.evalExamples ?? 1), 12);
    expect(roundThree?.recordHash.toString('hex')).toBe((await h.coordinator.federation.ledgerRecords.read(3)).recordHash);
    const badToken = await expectFailure(client.roundsPage(2, 'r99', false));
    expect([badToken.code, badToken.reason]).toEqual(['INVALID_ARGUMENT', 'INVALID_PAGE_TOKEN']);
  });

  it("GetModel streams each round's ONNX model, whose SHA-256 is what GetStatus and ListRounds report", async () => {
    const client = h.operatorClient();
    const rounds = await client.rounds();
    const status = await client.status();
    for (const round of rounds) {
      const model = await client.model({ round: round.sequence });
      expect(createHash('sha256').update(model.bytes).digest().equals(round.onnxSha256)).toBe(true);
      expect([model.round, model.modelHash]).toEqual([round.sequence, round.modelHash.toString('hex')]);
      expect((await client.model({ modelHash: round.modelHash })).sha256.equals(round.onnxSha256)).toBe(true);
      expect((await client.model({ modelHash: round.onnxSha256 })).round).toBe(round.sequence);
    }
    const latest = await client.model({});
    expect(latest.round).toBe(3);
    expect(createHash('sha256').update(latest.bytes).digest().equals(status.currentModelOnnxSha256)).toBe(true);
    const initial = await client.model({ round: 0 });
    expect(initial.modelHash).toBe(rounds[0]?.previousModelHash.toString('hex'));

    // The download is a working inference model: ten probabilities per example.
    const session = await ort.InferenceSession.create(latest.bytes);
    const output = await session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 64).fill(8), [2, 64]) });
    expect(output['probabilities']?.dims).toEqual([2, 10]);
    await session.release();

    const notCommitted = await expectFailure(client.model({ round: 4 }));
    expect([notCommitted.code, notCommitted.reason]).toEqual(['NOT_FOUND', 'NO_SUCH_ROUND']);
    const unknown = await expectFailure(client.model({ modelHash: Buffer.alloc(32, 1) }));
    expect([unknown.code, unknown.reason]).toEqual(['NOT_FOUND', 'NO_SUCH_MODEL']);
    const shortHash = await expectFailure(client.model({ modelHash: Buffer.alloc(8) }));
    expect([shortHash.code, shortHash.reason]).toEqual(['INVALID_ARGUMENT', 'INVALID_HASH']);
  });

  it('WatchRounds delivered every round event of the running federation, in order', () => {
    expect(events.map((event) => event.type)).toEqual([
      'ROUND_EVENT_STARTED', 'ROUND_EVENT_COMMITTED',
      'ROUND_EVENT_STARTED', 'ROUND_EVENT_COMMITTED',
      'ROUND_EVENT_STARTED', 'ROUND_EVENT_ABORTED',
      'ROUND_EVENT_STARTED', 'ROUND_EVENT_COMMITTED',
    ]);
    expect(events.map((event) => event.roundId?.counter)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    const committed = events.filter((event) => event.type === 'ROUND_EVENT_COMMITTED');
    expect(committed.map((event) => event.sequence)).toEqual([1, 2, 3]);
    expect(committed.at(-1)?.modelHash.toString('hex')).toBe(h.coordinator.federation.currentModelHash);
    expect([...(committed[1]?.survivors ?? [])].sort()).toEqual(['site-1', 'site-2', 'site-3']);
    expect(Object.keys(committed[1]?.stageSeconds ?? {})).toContain('masked_input');
    expect(events[5]?.abortReason).not.toBe('');
  });

  it('answers participant certificates with PERMISSION_DENIED on every Admin method', async () => {
    const client = h.operatorClient(site(0));
    for (const call of [client.status(), client.rounds(), client.model({ round: 1 }), client.revoke({ siteId: 'site-2' })] as Promise<unknown>[]) {
      const error = await expectFailure(call);
      expect([error.code, error.reason]).toEqual(['PERMISSION_DENIED', 'ROLE_NOT_ALLOWED']);
      expect(error.message).toContain(`participant site-1 may not call /${ADMIN_SERVICE_NAME}/`);
    }
  });

  it('reports the Admin service through health checking and server reflection', async () => {
    const HealthClient = makeClientConstructor(healthServiceDefinition, 'grpc.health.v1.Health');
    const health = new HealthClient(h.address(), channelCredentials({ caPem: h.caPem, certPem: h.operator.certPem, keyPem: h.operator.keyPem })) as unknown as Client & {
      check(request: { service: string }, callback: (error: ServiceError | null, response?: { status: string }) => void): void;
    };
    const status = await new Promise<string | undefined>((resolve, reject) => health.check({ service: ADMIN_SERVICE_NAME }, (error, reply) => (error === null ? resolve(reply?.status) : reject(error))));
    health.close();
    expect(status).toBe('SERVING');
    expect(await listReflectedServices(h.address(), channelCredentials({ caPem: h.caPem, certPem: h.operator.certPem, keyPem: h.operator.keyPem }))).toEqual(
      expect.arrayContaining([ADMIN_SERVICE_NAME, 'fedgate.v1.Federation']),
    );
    expect(adminProtocol().packageDefinition[ADMIN_SERVICE_NAME]).toBeDefined();
  });
});

describe('live revocation', () => {
  it('closes a revoked site\'s session, refuses its next call naming the serial, and the round it was in commits without it', async () => {
    const revocation = await siteFourRevocation;
    expect(revocation?.revoked.map((entry) => [entry.certificateSerial, entry.commonName, entry.role, entry.alreadyRevoked])).toEqual([[site(3).serial, 'site-4', 'participant', false]]);
    expect(revocation?.closedSessions).toEqual(['site-4']);
    const crl = verifyCertificateRevocationList(await readFile(join(h.caDir, 'crl.pem'), 'utf8'), h.caPem);
    expect(crl.revokedSerials.has(site(3).serial)).toBe(true);
    expect(BigInt(revocation?.crlNumber ?? 0)).toBeLessThanOrEqual(crl.crlNumber ?? 0n);

    const refused = await expectFailure(federationCall(site(3)));
    expect([refused.code, refused.reason]).toEqual(['UNAUTHENTICATED', 'CERTIFICATE_REVOKED']);
    expect(refused.message).toContain(`certificate serial ${site(3).serial} of participant site-4 has been revoked`);
    expect((await federationCall(site(0))).length).toBeGreaterThan(0);
    // The revoked site's daemon does not reconnect forever: it stops and reports why.
    const stopped = await (daemons[3]?.done ?? Promise.resolve()).then(() => undefined, (error: unknown) => error);
    expect(stopped).toBeInstanceOf(FedgateError);
    expect([(stopped as FedgateError).code, (stopped as FedgateError).reason]).toEqual(['UNAUTHENTICATED', 'CERTIFICATE_REVOKED']);
    // Round 2 (counter 2) had site-4 in U and committed with the three others.
    expect(events.find((event) => event.type === 'ROUND_EVENT_COMMITTED' && event.roundId?.counter === 2)?.participants).toContain('site-4');
  });

  it("hands the revoked serials to sites in the Graph message, and sites refuse a revoked neighbour's certificate", async () => {
    await siteThreeRevocation;
    // Round counter 3: the Graph went to site-1 and site-2 with site-3 still among their neighbours ...
    const roundThree = graphs.filter((graph) => graph.counter === 3 && graph.siteId !== 'site-3');
    expect(roundThree.map((graph) => graph.siteId).sort()).toEqual(['site-1', 'site-2']);
    for (const graph of roundThree) {
      expect(graph.message.neighbours.map((neighbour) => neighbour.siteId)).toContain('site-3');
      expect(graph.message.revokedSerials).toEqual(expect.arrayContaining([site(2).serial, site(3).serial]));
    }
    // ... and both refused it because of that certificate, over the wire from the real site daemons.
    expect(refusals.filter((refusal) => refusal.counter === 3).map((refusal) => [refusal.siteId, refusal.reason]).sort()).toEqual([
      ['site-1', 'CERTIFICATE_REVOKED'],
      ['site-2', 'CERTIFICATE_REVOKED'],
    ]);
    expect(events[5]?.type).toBe('ROUND_EVENT_ABORTED');
    expect([...(events[5]?.participants ?? [])].sort()).toEqual(['site-1', 'site-2', 'site-3']);
    const refused = await expectFailure(federationCall(site(2)));
    expect(refused.message).toContain(`certificate serial ${site(2).serial} of participant site-3 has been revoked`);
  });

  it("ends a revoked site's open Session stream with UNAUTHENTICATED naming the serial", async () => {
    const extra = await h.issue('participant', 'site-5');
    const client = new (federationProtocol().FederationClient)(h.address(), channelCredentials({ caPem: h.caPem, certPem: extra.certPem, keyPem: extra.keyPem }), clientChannelOptions());
    const call = client.session();
    const ended = new Promise<ServiceError>((resolve) => call.on('error', resolve));
    const connected = new Promise<void>((resolve) => call.on('data', (message: CoordinatorMessage__Output) => (message.payload === 'helloReply' ? resolve() : undefined)));
    call.write({
      payload: 'hello',
      hello: { protocolVersion: PROTOCOL_VERSION, fedgateVersion: '0.1.0', capabilities: { device: 'cpu', onnxOpset: DEFAULT_OPSET, maxModelBytes: 1 << 30, acceptedTaskHashes: [Buffer.from(h.coordinator.taskHash, 'hex')] } },
    });
    await connected;
    const revocation = await h.operatorClient().revoke({ siteId: 'site-5' });
    expect(revocation.closedSessions).toEqual(['site-5']);
    const status = await ended;
    expect(status.code).toBe(16); // UNAUTHENTICATED
    expect(status.details).toContain(`certificate serial ${extra.serial} of participant site-5 has been revoked by the federation CA: this session is closed`);
    client.close();
    expect((await h.operatorClient().participants()).map((participant) => participant.siteId)).toEqual(['site-1', 'site-2']);
  });

  it("ends a revoked operator's WatchRounds stream and refuses its next call", async () => {
    const secondOperator = await h.issue('operator', 'ops-2');
    const watcher = h.operatorClient(secondOperator);
    await watcher.status();
    const ending = expectFailure(watcher.watch(() => undefined));
    await watcher.status(); // answered after the watch call on the same connection: the stream is open
    await h.operatorClient().revoke({ serial: secondOperator.serial });
    const ended = await ending;
    expect([ended.code, ended.reason]).toEqual(['UNAUTHENTICATED', 'CERTIFICATE_REVOKED']);
    expect(ended.message).toContain(`certificate serial ${secondOperator.serial} of operator ops-2 has been revoked by the federation CA: this WatchRounds stream is closed`);
    const refused = await expectFailure(watcher.status());
    expect(refused.message).toContain(`certificate serial ${secondOperator.serial} of operator ops-2 has been revoked`);
  });

  it('reports unknown, malformed and repeated revocation targets precisely', async () => {
    const client = h.operatorClient();
    const unknownSerial = await expectFailure(client.revoke({ serial: '0123456789ABCDEF0123' }));
    expect([unknownSerial.code, unknownSerial.reason]).toEqual(['NOT_FOUND', 'UNKNOWN_SERIAL']);
    const unknownSite = await expectFailure(client.revoke({ siteId: 'no-such-site' }));
    expect([unknownSite.code, unknownSite.reason]).toEqual(['NOT_FOUND', 'UNKNOWN_SITE']);
    const malformed = await expectFailure(client.revoke({ serial: 'not hex' }));
    expect([malformed.code, malformed.reason]).toEqual(['INVALID_ARGUMENT', 'INVALID_SERIAL']);
    const again = await client.revoke({ serial: site(3).serial });
    expect(again.revoked.map((entry) => entry.alreadyRevoked)).toEqual([true]);
  });

  it('keeps revocations across a restart on the same state directory, even without the CA directory', async () => {
    const revoked = [...h.coordinator.revocations.serials].sort();
    await h.coordinator.stop();
    await h.startCoordinator({ rounds: 3, minParticipants: 2, withCaDirectory: false });
    expect([...h.coordinator.revocations.serials].sort()).toEqual(revoked);
    for (const index of [2, 3]) {
      const refused = await expectFailure(federationCall(site(index)));
      expect([refused.code, refused.reason]).toEqual(['UNAUTHENTICATED', 'CERTIFICATE_REVOKED']);
      expect(refused.message).toContain(site(index).serial);
    }
    expect((await federationCall(site(0))).length).toBeGreaterThan(0);
    const client = h.operatorClient();
    const status = await client.status();
    expect([status.committedRounds, status.revokedCertificates]).toEqual([3, revoked.length]);
    const withoutCa = await expectFailure(client.revoke({ siteId: 'site-1' }));
    expect([withoutCa.code, withoutCa.reason]).toEqual(['FAILED_PRECONDITION', 'CA_DIR_NOT_CONFIGURED']);
    expect(withoutCa.message).toContain('tls.ca_dir');
  });

  it('cuts off a WatchRounds caller that falls 1000 events behind, while one that keeps reading gets every event', async () => {
    // HTTP/2's default 64 KiB window (no clientChannelOptions): once it is full, events queue on the coordinator.
    const stalled = new (adminProtocol().AdminClient)(h.address(), channelCredentials({ caPem: h.caPem, certPem: h.operator.certPem, keyPem: h.operator.keyPem }));
    const call = stalled.watchRounds({});
    const cutOff = new Promise<ServiceError>((resolve) => call.on('error', resolve));
    let stalledRead = 0;
    const countAndStall = (): void => {
      stalledRead += 1;
      call.pause();
    };
    call.on('data', countAndStall);
    let read = 0;
    const reader = h.operatorClient();
    const stopReading = new AbortController();
    const reading = reader.watch(() => (read += 1), { signal: stopReading.signal }).then(() => undefined, (error: unknown) => error);
    // A call answered after each watch on the same connection: both streams are open.
    await reader.status();
    await new Promise((resolve, reject) => stalled.getStatus({}, (error) => (error === null ? resolve(undefined) : reject(error))));
    // Synthetic events (an unknown round aborting), large enough to fill the stalled caller's HTTP/2 window.
    const event = { type: 'round_aborted' as const, roundId: `${'00'.repeat(8)}${'ab'.repeat(16)}`, roundCounter: '0', participants: Array.from({ length: 50 }, (_, i) => `site-${i}-of-a-large-federation`), reason: 'synthetic', at: new Date().toISOString() };
    const total = 3000;
    for (let sent = 1; sent <= total; sent++) {
      h.coordinator.federation.emit('round', event);
      // Paced so the reading watcher can keep up: it is never more than 100 events behind.
      if (sent % 100 === 0) await vi.waitFor(() => expect(read).toBe(sent), { timeout: 20_000, interval: 10 });
    }
    // The status follows the messages already delivered: read them, then see why the stream ended.
    call.off('data', countAndStall);
    call.on('data', () => (stalledRead += 1));
    call.resume();
    const status = await cutOff;
    expect(stalledRead).toBeLessThan(total);
    expect(status.code).toBe(8); // RESOURCE_EXHAUSTED
    expect(status.details).toMatch(/round events are waiting unread on this WatchRounds stream \(limit 1000\)/);
    stalled.close();
    expect(read).toBe(total);
    stopReading.abort();
    expect(await reading).toBeUndefined();
  });
});
