/**
 * One well-formed domain object of every message family that crosses the Session stream, for the codec
 * tests of test/unit/proto: every stage message of crypto/secagg/messages.ts, the round framing of
 * crypto/secagg/round-envelope.ts and the session plumbing of proto/session-codec.ts. Byte fields are
 * filled with distinct values so that a codec swapping two of them fails the round trip.
 */
import { utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { encodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import { createRoundConfig, makeRoundId, type RoundConfig } from '../../crypto/secagg/config.js';
import type { AdvertiseKeysMessage, ServerMessage } from '../../crypto/secagg/messages.js';
import type { CoordinatorToSite, SessionClientMessage, SiteSessionMessage } from '../../crypto/secagg/round-envelope.js';
import type { CoordinatorSessionTraffic, SiteSessionTraffic } from '../../proto/session-codec.js';

let fill = 0;
/** `length` bytes of one value not used by any other sample field. */
export function bytes(length: number): Uint8Array {
  fill = (fill + 1) % 256;
  return new Uint8Array(length).fill(fill);
}

export const ROUND_ID = makeRoundId(7n, new Uint8Array(16).fill(9));

export const ROUND_CONFIG: RoundConfig = createRoundConfig({
  federationId: 'fed',
  roundId: ROUND_ID,
  participants: ['site-a', 'site-b', 'site-c', 'site-d'],
  taskHash: sha256(utf8('task')),
  modelHash: sha256(utf8('model')),
  optimizerStateHash: sha256(utf8('optimiser')),
  hyperParameters: { lr: 0.1, epochs: 2 },
  neighbourDegree: 3,
  layout: { parameterSegments: [{ length: 10, bound: 0.5 }], maxLossPerExample: 5, maxEvalExamples: 100 },
  maxWeight: 1000,
});
export const ROUND_CONFIG_BYTES = encodeRoundConfig(ROUND_CONFIG);

const advert = (): AdvertiseKeysMessage => ({ stage: 'advertise_keys', roundId: ROUND_ID, cipherPublicKey: bytes(32), maskPublicKey: bytes(32), nonceCommitment: bytes(32), signature: bytes(256) });
const hashes = () => ({ previousModelHash: bytes(32), aggregateHash: bytes(32), newModelHash: bytes(32), optimizerStateHash: bytes(32) });

/** Every stage message a site sends on its session, by stage. */
export const CLIENT_STAGE_SAMPLES: readonly SessionClientMessage[] = [
  advert(),
  { stage: 'nonce_reveal', roundId: ROUND_ID, keyListSignature: bytes(256), nonce: bytes(32) },
  { stage: 'share_keys', roundId: ROUND_ID, selfMaskCommitment: bytes(32), shares: [{ receiver: 'site-b', ciphertext: bytes(100) }, { receiver: 'site-c', ciphertext: bytes(100) }], signature: bytes(256) },
  { stage: 'consistency_check', roundId: ROUND_ID, signature: bytes(256) },
  {
    stage: 'unmask',
    roundId: ROUND_ID,
    shares: [
      { dealer: 'site-a', secret: 'self_mask', share: bytes(34) },
      { dealer: 'site-b', secret: 'mask_key', share: bytes(34) },
    ],
    signature: bytes(256),
  },
  { stage: 'commit', roundId: ROUND_ID, ...hashes(), signature: bytes(256) },
];

/** Every stage message the coordinator sends, by stage. */
export const SERVER_STAGE_SAMPLES: readonly ServerMessage[] = [
  { stage: 'key_list', roundId: ROUND_ID, entries: [{ siteId: 'site-a', advertDigest: bytes(32), nonceCommitment: bytes(32) }, { siteId: 'site-b', advertDigest: bytes(32), nonceCommitment: bytes(32) }] },
  {
    stage: 'graph',
    roundId: ROUND_ID,
    nonces: [{ siteId: 'site-a', nonce: bytes(32) }, { siteId: 'site-b', nonce: bytes(32) }],
    neighbours: [{ siteId: 'site-b', advert: advert(), keyListSignature: bytes(256), certificate: bytes(700) }],
    revokedSerials: ['0A1B2C', 'FF'],
  },
  { stage: 'share_delivery', roundId: ROUND_ID, survivors: ['site-a', 'site-b'], shares: [{ sender: 'site-b', receiver: 'site-a', ciphertext: bytes(100) }] },
  { stage: 'consistency_request', roundId: ROUND_ID, survivors: ['site-a', 'site-b'], closings: [{ siteId: 'site-a', survivorDigest: bytes(32), uploadHash: bytes(32), signature: bytes(256) }] },
  { stage: 'unmask_request', roundId: ROUND_ID, signatures: [{ siteId: 'site-a', signature: bytes(256) }, { siteId: 'site-b', signature: bytes(256) }] },
  { stage: 'commit_request', roundId: ROUND_ID, ...hashes() },
];

const refusal: SiteSessionMessage = { kind: 'refusal', roundId: ROUND_ID, reason: 'POLICY_REFUSED', message: 'the task is not pinned' };

/** Everything a site says on its Session stream: the plumbing, a refusal and every stage message. */
export const SITE_TRAFFIC_SAMPLES: readonly SiteSessionTraffic[] = [
  { kind: 'hello', hello: { protocolVersion: 1, fedgateVersion: '0.1.0', capabilities: { device: 'cuda:1', onnxOpset: 17, maxModelBytes: 2 ** 33, acceptedTaskHashes: [bytes(32), bytes(32)] } } },
  { kind: 'hello', hello: { protocolVersion: 1, fedgateVersion: '', capabilities: null } },
  { kind: 'heartbeat', heartbeat: { sequence: 2 ** 40, sentAtUnixMs: 1_700_000_000_123 } },
  { kind: 'training_progress', progress: { roundId: ROUND_ID, epoch: 2, step: 17, stepsTotal: 2 ** 35, loss: 0.5 } },
  refusal,
  { ...refusal, message: '' },
  ...CLIENT_STAGE_SAMPLES.map((message) => ({ kind: 'stage' as const, message })),
];

/** Everything the coordinator says on a Session stream, RoundStart excepted (its decoding adds the RoundConfig). */
export const COORDINATOR_TRAFFIC_SAMPLES: readonly Exclude<CoordinatorSessionTraffic, { kind: 'round_start' }>[] = [
  { kind: 'hello_reply', reply: { protocolVersion: 1, fedgateVersion: '0.1.0', federationId: 'fed', siteId: 'site-a', heartbeatIntervalMs: 5000 } },
  { kind: 'heartbeat', heartbeat: { sequence: 1, sentAtUnixMs: 0 } },
  { kind: 'abort', roundId: ROUND_ID, reason: 'TOO_FEW_SURVIVORS', message: '2 of 4 sites left' },
  { kind: 'committed', roundId: ROUND_ID, sequence: 12, newModelHash: bytes(32), signatures: 3, commitRecord: bytes(700) },
  ...SERVER_STAGE_SAMPLES.map((message) => ({ kind: 'stage' as const, message })),
];

export const ROUND_START: Extract<CoordinatorToSite, { kind: 'round_start' }> = { kind: 'round_start', roundId: ROUND_ID, roundConfig: ROUND_CONFIG_BYTES };
