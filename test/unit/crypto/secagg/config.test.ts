import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import {
  DEFAULT_DEADLINES,
  createRoundConfig,
  defaultThreshold,
  makeRoundId,
  roundCounter,
  roundSegments,
  vectorLength,
  type RoundConfig,
  type RoundConfigInput,
} from '../../../../crypto/secagg/config.js';
import { decodeRoundConfig, encodeRoundConfig, peekRoundId, roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import { checkRoundConfigAgainstPolicy, type SitePolicy } from '../../../../crypto/secagg/policy.js';
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';

const taskHash = sha256(utf8('task'));
const participants = ['site-c', 'site-a', 'site-e', 'site-b', 'site-d', 'site-f'];

function input(overrides: Partial<RoundConfigInput> = {}): RoundConfigInput {
  return {
    federationId: 'fed',
    roundId: makeRoundId(7n, new Uint8Array(16).fill(9)),
    participants,
    taskHash,
    modelHash: sha256(utf8('model')),
    optimizerStateHash: sha256(utf8('optimiser')),
    hyperParameters: { lr: 0.1, epochs: 2, optimizer: 'sgd', nesterov: false },
    neighbourDegree: 4,
    layout: { parameterSegments: [{ length: 10, bound: 0.5 }, { length: 6, bound: 2 }], maxLossPerExample: 5, maxEvalExamples: 100 },
    maxWeight: 1000,
    ...overrides,
  };
}

// The ring of six (k = 4, t = 4: two tolerated colluders) is refused by default (complete graph up to
// 100 sites); this site lowered complete_graph_up_to and min_neighbour_degree to accept it.
const policy: SitePolicy = { pinnedTaskHashes: [taskHash], minParticipants: 5, minThreshold: 3, completeGraphUpTo: 5, minNeighbourDegree: 4 };

describe('RoundConfig', () => {
  it('a threshold without a majority of a neighbourhood has its own reason, and its round id can still be read', () => {
    const config = createRoundConfig(input());
    const weak = { ...config, reconstructionThreshold: 2 };
    expect(() => encodeRoundConfig(weak)).toThrow(expect.objectContaining({ reason: 'THRESHOLD_TOO_LOW' }));
    expect(() => encodeRoundConfig({ ...config, reconstructionThreshold: 6 })).toThrow(expect.objectContaining({ reason: 'INVALID_ROUND_CONFIG' }));
    expect(() => encodeRoundConfig({ ...config, reconstructionThreshold: 0 })).toThrow(expect.objectContaining({ reason: 'INVALID_ROUND_CONFIG' }));
    const bytes = encodeRoundConfig(config);
    expect(peekRoundId(bytes)).toEqual(config.roundId);
    expect(peekRoundId(bytes.subarray(0, 40))).toBeUndefined();
    const otherLabel = Uint8Array.from(bytes);
    otherLabel[5] = (otherLabel[5] as number) ^ 1;
    expect(peekRoundId(otherLabel)).toBeUndefined();
  });

  it('applies defaults: t = ceil(2(k+1)/3), 30 s stages and 600 s MaskedInput, not plaintext; sorts U', () => {
    const config = createRoundConfig(input());
    expect(config.reconstructionThreshold).toBe(4);
    expect(defaultThreshold(8)).toBe(6);
    expect(defaultThreshold(19)).toBe(14);
    expect(config.deadlines).toEqual(DEFAULT_DEADLINES);
    expect(DEFAULT_DEADLINES.maskedInputMs).toBe(600_000);
    expect(DEFAULT_DEADLINES.advertiseKeysMs).toBe(30_000);
    expect(config.plaintext).toBe(false);
    expect(config.participants).toEqual(['site-a', 'site-b', 'site-c', 'site-d', 'site-e', 'site-f']);
    expect(vectorLength(config)).toBe(20);
    expect(roundSegments(config)).toEqual([
      { kind: 'scaled', length: 10, bound: 0.5 },
      { kind: 'scaled', length: 6, bound: 2 },
      { kind: 'scaled', length: 1, bound: 1 },
      { kind: 'scaled', length: 1, bound: 500 },
      { kind: 'count', length: 1, max: 100 },
      { kind: 'count', length: 1, max: 100 },
    ]);
  });

  it('round id = 8-byte big-endian counter || 16 random bytes', () => {
    const random = new Uint8Array(randomBytes(16));
    const roundId = makeRoundId(0x0102030405060708n, random);
    expect([...roundId.subarray(0, 8)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(roundId.subarray(8)).toEqual(random);
    expect(roundCounter(roundId)).toBe(0x0102030405060708n);
  });

  it('has one canonical encoding that round-trips and a hash that every field changes', () => {
    const config = createRoundConfig(input());
    const decoded = decodeRoundConfig(encodeRoundConfig(config));
    expect(decoded).toEqual(config);
    expect(encodeRoundConfig(decoded)).toEqual(encodeRoundConfig(config));
    // Key order of the hyper-parameters does not matter; their values do.
    const reordered = createRoundConfig(input({ hyperParameters: { nesterov: false, optimizer: 'sgd', epochs: 2, lr: 0.1 } }));
    expect(roundConfigHash(reordered)).toEqual(roundConfigHash(config));
    const variants: Partial<RoundConfigInput>[] = [
      { federationId: 'other' },
      { roundId: makeRoundId(8n, new Uint8Array(16).fill(9)) },
      { participants: [...participants, 'site-g'] },
      { taskHash: sha256(utf8('other task')) },
      { modelHash: sha256(utf8('other model')) },
      { optimizerStateHash: sha256(utf8('other state')) },
      { hyperParameters: { lr: 0.2, epochs: 2, optimizer: 'sgd', nesterov: false } },
      { hyperParameters: { lr: '0.1', epochs: 2, optimizer: 'sgd', nesterov: false } },
      { reconstructionThreshold: 3 },
      { neighbourDegree: 5 },
      { layout: { parameterSegments: [{ length: 10, bound: 0.5 }, { length: 6, bound: 2.5 }], maxLossPerExample: 5, maxEvalExamples: 100 } },
      { layout: { parameterSegments: [{ length: 16, bound: 0.5 }], maxLossPerExample: 5, maxEvalExamples: 100 } },
      { maxWeight: 999 },
      { deadlines: { unmaskMs: 31_000 } },
      { plaintext: true },
    ];
    const hashes = new Set([Buffer.from(roundConfigHash(config)).toString('hex')]);
    for (const variant of variants) hashes.add(Buffer.from(roundConfigHash(createRoundConfig(input(variant)))).toString('hex'));
    expect(hashes.size).toBe(variants.length + 1);
  });

  it.each([
    ['t <= (k+1)/2', { neighbourDegree: 4, reconstructionThreshold: 2 }, 'reconstructionThreshold'],
    ['t > k+1', { neighbourDegree: 4, reconstructionThreshold: 6 }, 'reconstructionThreshold'],
    ['odd k below |U| - 1', { neighbourDegree: 3 }, 'neighbourDegree'],
    ['k above |U| - 1', { neighbourDegree: 6 }, 'neighbourDegree'],
    ['a 16-byte round id', { roundId: new Uint8Array(16) }, 'roundId'],
    ['a short task hash', { taskHash: new Uint8Array(31) }, 'taskHash'],
    ['a duplicate participant', { participants: ['site-a', 'site-a', 'site-b'] }, 'participants'],
    ['one participant', { participants: ['site-a'] }, 'participants'],
    ['E_max above M', { layout: { parameterSegments: [{ length: 4, bound: 1 }], maxLossPerExample: 1, maxEvalExamples: 2 ** 30 } }, 'maxEvalExamples'],
    ['a NaN bound', { layout: { parameterSegments: [{ length: 4, bound: Number.NaN }], maxLossPerExample: 1, maxEvalExamples: 10 } }, 'bound'],
    ['a zero deadline', { deadlines: { commitMs: 0 } }, 'commitMs'],
    ['a NaN hyper-parameter', { hyperParameters: { lr: Number.NaN } }, 'hyperParameters'],
  ] as const)('refuses %s, naming the field', (_name, overrides, field) => {
    const error = refusal(() => createRoundConfig(input(overrides as Partial<RoundConfigInput>)));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain(field);
  });

  it('refuses to decode truncated or trailing bytes', () => {
    const bytes = encodeRoundConfig(createRoundConfig(input()));
    expect(refusal(() => decodeRoundConfig(bytes.subarray(0, bytes.length - 1))).code).toBe('INVALID_ARGUMENT');
    expect(refusal(() => decodeRoundConfig(Uint8Array.of(...bytes, 0))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('site policy', () => {
  const config = createRoundConfig(input());

  it('accepts a round that meets every rule', () => {
    expect(() => checkRoundConfigAgainstPolicy(config, 'site-a', policy)).not.toThrow();
  });

  it.each([
    ['TASK_NOT_PINNED', config, 'site-a', { ...policy, pinnedTaskHashes: [sha256(utf8('other'))] }],
    ['TOO_FEW_PARTICIPANTS', config, 'site-a', { ...policy, minParticipants: 7 }],
    ['THRESHOLD_BELOW_SITE_MINIMUM', config, 'site-a', { ...policy, minThreshold: 5 }],
    ['PLAINTEXT_NOT_ALLOWED', createRoundConfig(input({ plaintext: true })), 'site-a', policy],
    ['SITE_NOT_IN_ROUND', config, 'site-z', policy],
    ['SITE_NOT_IN_ROSTER', config, 'site-a', { ...policy, roster: new Set(['site-a', 'site-b', 'site-c', 'site-d', 'site-e']) }],
    ['FEDERATION_MISMATCH', config, 'site-a', { ...policy, federationId: 'another federation' }],
    // A forged config object (never through createRoundConfig) with t <= (k+1)/2.
    ['THRESHOLD_TOO_LOW', { ...config, reconstructionThreshold: 2 } as RoundConfig, 'site-a', { ...policy, minThreshold: 1 }],
  ] as const)('refuses with %s', (reason, candidate, siteId, sitePolicy) => {
    const error = refusal(() => checkRoundConfigAgainstPolicy(candidate, siteId, sitePolicy));
    expect(error.code).toBe('FAILED_PRECONDITION');
    expect(error.reason).toBe(reason);
  });

  it('accepts plaintext only where the site allows it', () => {
    const plaintext = createRoundConfig(input({ plaintext: true }));
    expect(() => checkRoundConfigAgainstPolicy(plaintext, 'site-a', { ...policy, allowPlaintext: true })).not.toThrow();
  });
});
