/**
 * validateRoundConfig field by field: a RoundConfig is what every site signs, so each structural rule
 * must refuse exactly the values outside it and accept its boundary. Each row breaks one field of an
 * otherwise valid config and expects INVALID_ROUND_CONFIG naming that field; the boundary rows accept.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { quantizationScale } from '../../../../crypto/quantize.js';
import {
  MAX_DEADLINE_MS,
  MAX_PARTICIPANTS,
  createRoundConfig,
  makeRoundId,
  roundCounter,
  validateRoundConfig,
  type RoundConfig,
} from '../../../../crypto/secagg/config.js';
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';

const participants = ['site-a', 'site-b', 'site-c', 'site-d', 'site-e', 'site-f'];
const SCALE = quantizationScale(participants.length);

const valid: RoundConfig = createRoundConfig({
  federationId: 'fed',
  roundId: makeRoundId(7n, new Uint8Array(16).fill(9)),
  participants,
  taskHash: sha256(utf8('task')),
  modelHash: sha256(utf8('model')),
  optimizerStateHash: sha256(utf8('optimiser')),
  hyperParameters: { lr: 0.1, nesterov: false, optimizer: 'sgd' },
  neighbourDegree: 5,
  layout: { parameterSegments: [{ length: 10, bound: 0.5 }], maxLossPerExample: 5, maxEvalExamples: 100 },
  maxWeight: 1000,
});

/** `valid` with `change` applied, bypassing createRoundConfig (a decoded or forged object). */
const forged = (change: Record<string, unknown>): RoundConfig => ({ ...valid, ...change }) as RoundConfig;
const layout = (change: Record<string, unknown>): RoundConfig => forged({ layout: { ...valid.layout, ...change } });
const segments = (...parameterSegments: unknown[]): RoundConfig => layout({ parameterSegments });

describe('validateRoundConfig', () => {
  it('accepts the valid config, its complete graph with odd k = |U| - 1, and t = k + 1', () => {
    expect(valid.neighbourDegree % 2).toBe(1);
    expect(() => validateRoundConfig(valid)).not.toThrow();
    expect(() => validateRoundConfig(forged({ reconstructionThreshold: 6 }))).not.toThrow();
  });

  it.each([
    ['a config that is not an object', null, ' must be an object'],
    ['a config that is a string', 'config', ' must be an object'],
    ['an empty federation id', forged({ federationId: '' }), 'federationId must be a non-empty string'],
    ['a federation id that is not a string', forged({ federationId: 7 }), 'federationId'],
    ['a round id that is not bytes', forged({ roundId: Array.from(valid.roundId) }), 'roundId'],
    ['a 25-byte round id', forged({ roundId: new Uint8Array(25) }), 'roundId must be 24 bytes (8-byte counter || 16 random bytes)'],
    ['a model hash of 33 bytes', forged({ modelHash: new Uint8Array(33) }), 'modelHash must be a 32-byte SHA-256 digest'],
    ['a model hash that is hex text', forged({ modelHash: 'ab'.repeat(32) }), 'modelHash'],
    ['an optimiser-state hash of 31 bytes', forged({ optimizerStateHash: new Uint8Array(31) }), 'optimizerStateHash'],
    ['a task hash that is not bytes', forged({ taskHash: null }), 'taskHash'],
    ['participants that are not an array', forged({ participants: 'site-a,site-b' }), 'participants must list between 2 and 65535 site ids'],
    ['an empty participant id', forged({ participants: ['', 'site-a'], neighbourDegree: 1, reconstructionThreshold: 2 }), 'participants[0] must be a non-empty string'],
    ['a participant id that is not a string', forged({ participants: ['site-a', 7], neighbourDegree: 1, reconstructionThreshold: 2 }), 'participants[1]'],
    ['participants out of byte order', forged({ participants: ['site-b', 'site-a', 'site-c', 'site-d', 'site-e', 'site-f'] }), 'participants[1] must be distinct and in UTF-8 byte order, got "site-a" after "site-b"'],
    ['a degree that is not an integer', forged({ neighbourDegree: 4.5 }), 'neighbourDegree must be an integer in [1, |U| - 1 = 5], got 4.5'],
    ['a degree of 0', forged({ neighbourDegree: 0, reconstructionThreshold: 1 }), 'neighbourDegree must be an integer in [1, |U| - 1 = 5], got 0'],
    ['an odd degree below |U| - 1', forged({ neighbourDegree: 3, reconstructionThreshold: 3 }), 'neighbourDegree must be even unless it is |U| - 1 = 5 (complete graph), got 3'],
    ['a threshold that is not an integer', forged({ reconstructionThreshold: 4.5 }), 'reconstructionThreshold must be an integer with (k+1)/2 < t <= k+1 = 6, got 4.5'],
    ['an unknown purpose', forged({ purpose: 'exfiltrate' }), 'purpose must be one of train_and_evaluate, train, evaluate, got exfiltrate'],
    ['a layout that is not an object', forged({ layout: null }), 'layout must be an object'],
    ['a layout that is a string', forged({ layout: 'segments' }), 'layout must be an object'],
    ['parameter segments that are not an array', layout({ parameterSegments: { length: 10, bound: 1 } }), 'layout.parameterSegments must be an array'],
    ['no parameter segment in a training round', segments(), 'layout.parameterSegments must be a non-empty array'],
    ['a segment of length 0', segments({ length: 0, bound: 1 }), 'layout.parameterSegments[0].length must be a positive integer, got 0'],
    ['a segment of fractional length', segments({ length: 2.5, bound: 1 }), 'layout.parameterSegments[0].length'],
    ['a second segment with a zero bound', segments({ length: 2, bound: 1 }, { length: 2, bound: 0 }), 'layout.parameterSegments[1].bound must be a finite positive number, got 0'],
    ['a segment with an infinite bound', segments({ length: 2, bound: Infinity }), 'layout.parameterSegments[0].bound'],
    ['2^30 parameters', segments({ length: 2 ** 29, bound: 1 }, { length: 2 ** 29, bound: 1 }), 'layout.parameterSegments must hold at most 2^30 - 1 parameters'],
    ['a zero loss bound', layout({ maxLossPerExample: 0 }), 'layout.maxLossPerExample must be a finite positive number, got 0'],
    ['a NaN loss bound', layout({ maxLossPerExample: Number.NaN }), 'layout.maxLossPerExample'],
    ['no evaluation example', layout({ maxEvalExamples: 0 }), 'layout.maxEvalExamples'],
    ['E_max = M + 1', layout({ maxEvalExamples: SCALE + 1 }), `layout.maxEvalExamples must be an integer in [1, M = ${SCALE}] so counts sum without wrapping, got ${SCALE + 1}`],
    ['a fractional E_max', layout({ maxEvalExamples: 10.5 }), 'layout.maxEvalExamples'],
    ['a zero max weight', forged({ maxWeight: 0 }), 'maxWeight must be a positive integer, got 0'],
    ['a fractional max weight', forged({ maxWeight: 10.5 }), 'maxWeight'],
    ['a deadline above 24 h', forged({ deadlines: { ...valid.deadlines, unmaskMs: MAX_DEADLINE_MS + 1 } }), `deadlines.unmaskMs must be an integer number of milliseconds in [1, ${MAX_DEADLINE_MS}], got ${MAX_DEADLINE_MS + 1}`],
    ['a fractional deadline', forged({ deadlines: { ...valid.deadlines, shareKeysMs: 1.5 } }), 'deadlines.shareKeysMs'],
    ['a missing deadline', forged({ deadlines: { ...valid.deadlines, advertiseKeysMs: undefined } }), 'deadlines.advertiseKeysMs'],
    ['no deadlines at all', forged({ deadlines: undefined }), 'deadlines.advertiseKeysMs'],
    ['plaintext that is not a boolean', forged({ plaintext: 'false' }), 'plaintext must be a boolean'],
    ['hyper-parameters that are not an object', forged({ hyperParameters: null }), 'hyperParameters must be an object'],
    ['hyper-parameters that are a string', forged({ hyperParameters: 'lr=1' }), 'hyperParameters must be an object'],
    ['a hyper-parameter with an empty key', forged({ hyperParameters: { '': 1 } }), 'hyperParameters[""] must have a non-empty key and a string, boolean or finite number value'],
    ['an infinite hyper-parameter', forged({ hyperParameters: { lr: Infinity } }), 'hyperParameters["lr"]'],
    ['a hyper-parameter that is an object', forged({ hyperParameters: { lr: { value: 1 } } }), 'hyperParameters["lr"]'],
    ['a null hyper-parameter', forged({ hyperParameters: { lr: null } }), 'hyperParameters["lr"]'],
  ] as const)('refuses %s, naming the field and what it must be', (_name, config, text) => {
    const error = refusal(() => validateRoundConfig(config as RoundConfig));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ROUND_CONFIG', stage: 'round_config' });
    expect(error.message).toContain(`RoundConfig.${text}`);
  });

  it('takes as many participants as Shamir has x coordinates, and no more', () => {
    const ids = (count: number): string[] => Array.from({ length: count }, (_, index) => `s${String(index).padStart(6, '0')}`);
    const most = forged({ participants: ids(MAX_PARTICIPANTS), neighbourDegree: MAX_PARTICIPANTS - 1, reconstructionThreshold: MAX_PARTICIPANTS });
    expect(() => validateRoundConfig(most)).not.toThrow();
    const error = refusal(() => validateRoundConfig(forged({ participants: ids(MAX_PARTICIPANTS + 1), neighbourDegree: MAX_PARTICIPANTS, reconstructionThreshold: MAX_PARTICIPANTS })));
    expect(error.message).toContain(`between 2 and ${MAX_PARTICIPANTS}`);
  });

  it('refuses a threshold of exactly (k+1)/2, and t = 1, as THRESHOLD_TOO_LOW, naming t and (k+1)/2', () => {
    const half = refusal(() => validateRoundConfig(forged({ reconstructionThreshold: 3 })));
    expect(half).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'THRESHOLD_TOO_LOW', stage: 'round_config' });
    expect(half.message).toContain('RoundConfig.reconstructionThreshold t = 3 must exceed (k+1)/2 = 3');
    const pair = { participants: ['site-a', 'site-b'], neighbourDegree: 1 };
    expect(refusal(() => validateRoundConfig(forged({ ...pair, reconstructionThreshold: 1 }))).reason).toBe('THRESHOLD_TOO_LOW');
    expect(() => validateRoundConfig(forged({ ...pair, reconstructionThreshold: 2 }))).not.toThrow();
  });

  it('accepts each boundary: 24 h and 1 ms deadlines, E_max = M, 2^30 - 1 parameters, one evaluation example, weight 1', () => {
    const boundaries = [
      forged({ deadlines: { ...valid.deadlines, unmaskMs: MAX_DEADLINE_MS, commitMs: 1 } }),
      layout({ maxEvalExamples: SCALE }),
      layout({ maxEvalExamples: 1 }),
      segments({ length: 2 ** 29, bound: 1 }, { length: 2 ** 29 - 1, bound: 1 }),
      segments({ length: 1, bound: 1e-9 }),
      forged({ maxWeight: 1 }),
      forged({ hyperParameters: {} }),
      forged({ hyperParameters: { name: '', on: true, n: -1 } }),
    ];
    for (const config of boundaries) expect(() => validateRoundConfig(config)).not.toThrow();
  });

  it("needs parameter segments except in an evaluation-only round, which must have none", () => {
    expect(() => validateRoundConfig(forged({ purpose: 'evaluate', layout: { ...valid.layout, parameterSegments: [] } }))).not.toThrow();
    const error = refusal(() => validateRoundConfig(forged({ purpose: 'evaluate' })));
    expect(error.message).toContain("must be empty in an evaluation-only round");
    expect(() => validateRoundConfig(forged({ purpose: 'train', layout: { ...valid.layout, parameterSegments: [] } }))).toThrow(/must be a non-empty array/);
  });
});

describe('createRoundConfig', () => {
  it('raises the default t of three sites to 3 (one tolerated colluder) unless the round is plaintext', () => {
    const three = { ...valid, participants: ['site-a', 'site-b', 'site-c'], neighbourDegree: 2 };
    const { reconstructionThreshold: _t, plaintext: _plaintext, ...input } = three;
    expect(createRoundConfig(input).reconstructionThreshold).toBe(3);
    expect(createRoundConfig({ ...input, plaintext: false }).reconstructionThreshold).toBe(3);
    expect(createRoundConfig({ ...input, plaintext: true }).reconstructionThreshold).toBe(2);
  });

  it('has no distributedDp key at all when the round has none', () => {
    const { distributedDp: _none, ...input } = valid;
    expect(Object.hasOwn(createRoundConfig(input), 'distributedDp')).toBe(false);
  });
});

describe('round ids', () => {
  it('take counters in [0, 2^64) and 16 random bytes, and read the counter back from any view', () => {
    expect(roundCounter(makeRoundId(0n, new Uint8Array(16)))).toBe(0n);
    expect(roundCounter(makeRoundId((1n << 64n) - 1n, new Uint8Array(16)))).toBe((1n << 64n) - 1n);
    const high = refusal(() => makeRoundId(1n << 64n, new Uint8Array(16)));
    expect(high.reason).toBe('INVALID_ROUND_COUNTER');
    expect(high.message).toContain(`round counter must be in [0, 2^64), got ${1n << 64n}`);
    expect(refusal(() => makeRoundId(-1, new Uint8Array(16))).reason).toBe('INVALID_ROUND_COUNTER');
    expect(() => makeRoundId(1, new Uint8Array(15))).toThrow(/random/);
    // A round id inside a larger buffer (as a decoder hands it out) reads its own counter.
    const framed = new Uint8Array(40);
    framed.set(makeRoundId(0x0a0b0c0dn, new Uint8Array(16).fill(1)), 8);
    expect(roundCounter(framed.subarray(8, 32))).toBe(0x0a0b0c0dn);
    expect(() => roundCounter(framed.subarray(8, 31))).toThrow(/roundId/);
  });
});
