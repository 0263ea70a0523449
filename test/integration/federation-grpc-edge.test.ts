/**
 * The real Federation service (startCoordinator) at its edges, over mutual TLS on 127.0.0.1:
 * - callers it must not serve: no client certificate, another CA, expired, revoked, wrong role (the
 *   same checks on a stand-in server are in transport.test.ts; here the service a site really talks to);
 * - DownloadModel of a multi-chunk blob and of one it does not hold; uploads outside a round. 64 MiB
 *   in both directions is transport.test.ts ("downloads a 64 MiB model ...", "uploads a 64 MiB masked
 *   input ..."): the same transfer code, createFedgateServer limits, serverCredentials and
 *   clientChannelOptions that startCoordinator and startParticipant use, so it is not repeated here;
 * - a hostile participant inside a live round: a message made and signed by another participant, one
 *   for another round, uploads whose hash or length is wrong or that come at the wrong stage. Each is
 *   refused with a clear status, its session stays open, and the round commits FedAvg of the honest
 *   sites as if the hostile one had simply not taken part.
 */
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { credentials as grpcCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate, type IssuedCertificate } from '../../certs/index.js';
import { SecAggClient } from '../../crypto/secagg/client.js';
import { decodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import { buildTrainingPlan } from '../../model/plan.js';
import { clientChannelOptions } from '../../proto/channel-options.js';
import { MIB, sha256 } from '../../proto/chunking.js';
import { FedgateError } from '../../proto/errors.js';
import { federationProtocol, type FederationClient } from '../../proto/loader.js';
import type { ParticipantMessage } from '../../proto/messages.js';
import { encodeClientStage } from '../../proto/round-codec.js';
import { roundIdToWire } from '../../proto/round-id.js';
import { downloadModel, uploadMaskedInput } from '../../proto/transfer.js';
import { compareWithFedAvg, verifyCommitRecord } from '../support/grpc-federation-checks.js';
import { GrpcFederation, siteCertificate, type TlsPair } from '../support/grpc-federation.js';
import { DIGITS_MLP_TASK } from '../support/in-memory-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';
import { NO_COLLUSION_MARGIN } from '../support/protocol-margin.js';

const plan = buildTrainingPlan(DIGITS_MLP_TASK);
/** One masked input of this task: d parameters + 4 slots, uint32 each. */
const UPLOAD_BYTES = (plan.initialParameters.length + 4) * 4;

let pki: TestPki;
let harness: GrpcFederation | undefined;

beforeAll(async () => {
  pki = await createTestPki('fedgate grpc edge CA');
});

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function failure(promise: Promise<unknown>): Promise<FedgateError> {
  const outcome = await promise.then(
    () => new Error('expected the call to fail'),
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(FedgateError);
  return outcome as FedgateError;
}

/** grpc-js credentials without our start-up checks: what a misconfigured or hostile peer presents. */
function rawCredentials(certificate?: TlsPair): ChannelCredentials {
  const ca = Buffer.from(pki.ca.certificatePem);
  return certificate === undefined ? grpcCredentials.createSsl(ca) : grpcCredentials.createSsl(ca, Buffer.from(certificate.privateKeyPem), Buffer.from(certificate.certificatePem));
}

describe('the Federation service refuses callers it must not serve', () => {
  it('answers Session and DownloadModel with UNAUTHENTICATED or PERMISSION_DENIED and a reason', async () => {
    const foreignCa = await createCertificateAuthority({ commonName: 'foreign CA', validDays: 1 });
    const [foreign, expired, revoked, operator] = await Promise.all([
      issueCertificate(foreignCa, { commonName: 'site-1', role: 'participant' }),
      pki.expiredParticipant('site-expired'),
      pki.participant('site-revoked'),
      pki.operator('ops'),
    ]);
    harness = await GrpcFederation.start({ pki, sites: 1, rounds: 1, startSites: false, revokedSerials: [revoked.serial] });
    const federation = harness;
    const { FederationClient } = federationProtocol();
    const raw = (certificate?: IssuedCertificate): FederationClient => federation.track(new FederationClient(federation.address, rawCredentials(certificate), clientChannelOptions()));
    const cases: [string, FederationClient, string, string, RegExp][] = [
      ['no client certificate', raw(), 'UNAUTHENTICATED', 'NO_VERIFIED_CERTIFICATE', /no verified client certificate on this connection/],
      ['a certificate of another CA', raw(foreign), 'UNAUTHENTICATED', 'NO_VERIFIED_CERTIFICATE', /no verified client certificate/],
      ['an expired certificate', raw(expired), 'UNAUTHENTICATED', 'NO_VERIFIED_CERTIFICATE', /no verified client certificate/],
      ['a revoked certificate', federation.client(revoked), 'UNAUTHENTICATED', 'CERTIFICATE_REVOKED', new RegExp(`certificate serial ${revoked.serial} of participant site-revoked has been revoked`)],
      ['an operator certificate', federation.client(operator), 'PERMISSION_DENIED', 'ROLE_NOT_ALLOWED', /operator ops may not call \/fedgate\.v1\.Federation\/Session: it is reserved for role participant/],
    ];
    for (const [name, client, code, reason, message] of cases) {
      const session = await federation.openSession(client).ended;
      expect({ name, code: session?.code, reason: session?.reason }).toEqual({ name, code, reason });
      expect(session?.message).toMatch(message);
      const download = await failure(downloadModel(client, Buffer.from(federation.taskHash, 'hex'), { maxBytes: MIB }));
      expect({ name, code: download.code, reason: download.reason }).toEqual({ name, code, reason });
    }
    // None of them got as far as the service: no session was ever registered; the access-control
    // refusals of verified certificates are in the audit log.
    expect(federation.coordinator.registry.connected()).toEqual([]);
    const audited = federation.coordinatorLines('call refused').map((entry) => `${String(entry['reason'])} ${String(entry['method'])}`);
    for (const reason of ['CERTIFICATE_REVOKED', 'ROLE_NOT_ALLOWED']) {
      expect(audited).toContain(`${reason} /fedgate.v1.Federation/Session`);
      expect(audited).toContain(`${reason} /fedgate.v1.Federation/DownloadModel`);
    }
  });
});

describe('transfers through the real service', () => {
  it('serves a stored blob in ~1 MiB chunks, answers NOT_FOUND for a blob it does not hold, and refuses uploads when no round is open', async () => {
    harness = await GrpcFederation.start({ pki, sites: 1, rounds: 1, startSites: false });
    const client = harness.client(await siteCertificate(pki, 'site-1'));
    const blob = randomBytes(5 * MIB + 123);
    const hash = await harness.coordinator.federation.blobs.put(blob);
    const downloaded = await downloadModel(client, Buffer.from(hash, 'hex'), { maxBytes: 6 * MIB });
    expect(downloaded.equals(blob)).toBe(true);
    // The cap is the caller's: a site that accepts less stops the download with RESOURCE_EXHAUSTED.
    const tooBig = await failure(downloadModel(client, Buffer.from(hash, 'hex'), { maxBytes: 4 * MIB }));
    expect(tooBig.code).toBe('RESOURCE_EXHAUSTED');

    // Before the fix the coordinator destroyed this stream without a status and the call never ended.
    const unknown = await failure(downloadModel(client, Buffer.alloc(32, 7), { maxBytes: MIB }));
    expect(unknown.code).toBe('NOT_FOUND');
    expect(unknown.reason).toBe('NO_SUCH_BLOB');
    expect(unknown.message).toContain(`the coordinator holds no model or round artefact with SHA-256 ${'07'.repeat(32)}`);

    const payload = randomBytes(UPLOAD_BYTES);
    const closed = await failure(uploadMaskedInput(client, { roundId: { counter: 1, nonce: Buffer.alloc(16) }, stage: 'ROUND_STAGE_MASKED_INPUT' }, payload));
    expect(closed.code).toBe('FAILED_PRECONDITION');
    expect(closed.reason).toBe('NO_OPEN_ROUND');
    expect(closed.message).toContain('no round is accepting masked inputs now');
  });
});

describe('a hostile participant inside a live round', () => {
  it('refuses its forged, misdirected and malformed messages with clear statuses while the honest sites commit FedAvg', async () => {
    harness = await GrpcFederation.start({ pki, sites: 5, rounds: 1, reconstructionThreshold: 3, startSites: false });
    const federation = harness;
    for (const siteId of ['site-1', 'site-2', 'site-3', 'site-4']) federation.startSite(siteId);
    const hostile = await siteCertificate(pki, 'site-5');
    const client = federation.client(hostile);
    const session = federation.openSession(client);
    let sessionEnded = false;
    void session.ended.then(() => {
      sessionEnded = true;
    });
    const start = await session.next('roundStart', 60_000);
    const config = decodeRoundConfig(new Uint8Array(start.roundStart?.roundConfig ?? []));
    const target = { roundId: roundIdToWire(config.roundId), stage: 'ROUND_STAGE_MASKED_INPUT' as const };

    // Uploads: a hash that does not match the bytes, a vector of the wrong length, and a well-formed
    // upload at a stage that takes none.
    const bytes = randomBytes(UPLOAD_BYTES);
    const badHash = await failure(uploadMaskedInput(client, target, bytes, { payloadSha256: sha256(Buffer.from('other bytes')) }));
    expect(badHash.code).toBe('DATA_LOSS');
    expect(badHash.reason).toBe('HASH_MISMATCH');
    expect(badHash.message).toMatch(new RegExp(`SHA-256 of the ${UPLOAD_BYTES} received bytes is [0-9a-f]{64}, expected`));
    const short = await failure(uploadMaskedInput(client, target, bytes.subarray(4)));
    expect(short.code).toBe('INVALID_ARGUMENT');
    expect(short.reason).toBe('WRONG_LENGTH');
    expect(short.message).toContain(`a masked input of this round is ${UPLOAD_BYTES} bytes; got ${UPLOAD_BYTES - 4}`);
    const early = await failure(uploadMaskedInput(client, target, bytes, { closing: { survivorDigest: Buffer.alloc(32), signature: Buffer.alloc(256) } }));
    expect(early.code).toBe('FAILED_PRECONDITION');
    expect(early.message).toContain('a masked_input message arrived while the round accepts advertise_keys');

    // Session messages: site-2's own signed advert sent on site-5's session, then a valid advert of
    // site-5 for another round; then site-5 leaves the round.
    const advertOf = (siteId: string, certificate: TlsPair, roundConfig: RoundConfig): ParticipantMessage =>
      encodeClientStage(
        new SecAggClient({
          siteId,
          signingKey: createPrivateKey(certificate.privateKeyPem),
          policy: { pinnedTaskHashes: [config.taskHash], minParticipants: 2, minThreshold: 2, ...NO_COLLUSION_MARGIN },
          trust: { caCertificate: new X509Certificate(pki.ca.certificatePem), revokedSerials: new Set() },
        }).advertiseKeys(roundConfig),
      );
    session.call.write(advertOf('site-2', federation.certificate('site-2'), config));
    const otherRound = new Uint8Array(config.roundId);
    otherRound[23] = (otherRound[23] as number) ^ 0xff;
    session.call.write(advertOf('site-5', hostile, { ...config, roundId: otherRound }));
    session.call.write({ payload: 'roundRefusal', roundRefusal: { roundId: config.roundId, reason: 'LEAVING', message: 'done misbehaving' } });

    await federation.waitUntilDone(60_000);
    const fromHostile = federation.received.filter((record) => record.siteId === 'site-5').map((record) => [record.what, record.accepted, record.reason]);
    expect(fromHostile).toEqual([
      ['masked_input', false, 'STAGE_CLOSED'],
      ['advertise_keys', false, 'BAD_SIGNATURE'],
      ['advertise_keys', false, 'WRONG_ROUND'],
      ['refusal', true, 'LEAVING'],
    ]);
    const refusedDetails = federation.coordinatorLines('round message refused').filter((entry) => entry['site'] === 'site-5').map((entry) => String(entry['detail']));
    expect(refusedDetails).toEqual([
      expect.stringContaining("advertise_keys.signature does not verify against the sender's certificate"),
      expect.stringContaining('the message is for another round'),
    ]);
    // Refused messages do not end the session: site-5 is still connected after the round.
    expect(sessionEnded).toBe(false);
    expect(federation.coordinator.registry.get('site-5')).toBeDefined();

    // The round: site-2 took part with its own advert, site-5 not at all, and the result is FedAvg of 1-4.
    const [event] = federation.committed();
    expect(event?.survivors).toEqual(['site-1', 'site-2', 'site-3', 'site-4']);
    const [record] = await federation.ledgerFiles();
    if (record === undefined) throw new Error('no ledger record');
    expect(record.body.keyList.map((entry) => entry.siteId)).toEqual(['site-1', 'site-2', 'site-3', 'site-4']);
    const verification = verifyCommitRecord(record, pki.ca.certificatePem);
    expect(verification.invalid).toEqual([]);
    expect(verification.quorum).toBe(true);
    const comparison = await compareWithFedAvg(federation, record, plan, { participants: 5, maxWeight: 2000, clipBound: 1 });
    expect(comparison.outside).toEqual([]);
    expect(comparison.largestWeightedDelta).toBeLessThan(1);
  });
});
