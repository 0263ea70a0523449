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
    ['a config that is not an object', null, ''],
    ['an empty federation id', forged({ federationId: '' }), 'federationId'],
    ['a federation id that is not a string', forged({ federationId: 7 }), 'federationId'],
    ['a round id that is not bytes', forged({ roundId: Array.from(valid.roundId) }), 'roundId'],
    ['a 25-byte round id', forged({ roundId: new Uint8Array(25) }), 'roundId'],
    ['a model hash of 33 bytes', forged({ modelHash: new Uint8Array(33) }), 'modelHash'],
    ['a model hash that is hex text', forged({ modelHash: 'ab'.repeat(32) }), 'modelHash'],
    ['an optimiser-state hash of 31 bytes', forged({ optimizerStateHash: new Uint8Array(31) }), 'optimizerStateHash'],
    ['a task hash that is not bytes', forged({ taskHash: null }), 'taskHash'],
    ['participants that are not an array', forged({ participants: 'site-a,site-b' }), 'participants'],
    ['an empty participant id', forged({ participants: ['', 'site-a'], neighbourDegree: 1, reconstructionThreshold: 2 }), 'participants[0]'],
    ['a participant id that is not a string', forged({ participants: ['site-a', 7], neighbourDegree: 1, reconstructionThreshold: 2 }), 'participants[1]'],
    ['participants out of byte order', forged({ participants: ['site-b', 'site-a', 'site-c', 'site-d', 'site-e', 'site-f'] }), 'participants[1]'],
    ['a degree that is not an integer', forged({ neighbourDegree: 4.5 }), 'neighbourDegree'],
    ['a degree of 0', forged({ neighbourDegree: 0, reconstructionThreshold: 1 }), 'neighbourDegree'],
    ['a threshold that is not an integer', forged({ reconstructionThreshold: 4.5 }), 'reconstructionThreshold'],
    ['an unknown purpose', forged({ purpose: 'exfiltrate' }), 'purpose'],
    ['a layout that is not an object', forged({ layout: null }), 'layout'],
    ['parameter segments that are not an array', layout({ parameterSegments: { length: 10, bound: 1 } }), 'layout.parameterSegments'],
    ['no parameter segment in a training round', segments(), 'layout.parameterSegments'],
    ['a segment of length 0', segments({ length: 0, bound: 1 }), 'layout.parameterSegments[0].length'],
    ['a segment of fractional length', segments({ length: 2.5, bound: 1 }), 'layout.parameterSegments[0].length'],
    ['a second segment with a zero bound', segments({ length: 2, bound: 1 }, { length: 2, bound: 0 }), 'layout.parameterSegments[1].bound'],
    ['a segment with an infinite bound', segments({ length: 2, bound: Infinity }), 'layout.parameterSegments[0].bound'],
    ['2^30 parameters', segments({ length: 2 ** 29, bound: 1 }, { length: 2 ** 29, bound: 1 }), 'layout.parameterSegments must hold at most 2^30 - 1 parameters'],
    ['a zero loss bound', layout({ maxLossPerExample: 0 }), 'layout.maxLossPerExample'],
    ['a NaN loss bound', layout({ maxLossPerExample: Number.NaN }), 'layout.maxLossPerExample'],
    ['no evaluation example', layout({ maxEvalExamples: 0 }), 'layout.maxEvalExamples'],
    ['E_max = M + 1', layout({ maxEvalExamples: SCALE + 1 }), 'layout.maxEvalExamples'],
    ['a fractional E_max', layout({ maxEvalExamples: 10.5 }), 'layout.maxEvalExamples'],
    ['a zero max weight', forged({ maxWeight: 0 }), 'maxWeight'],
    ['a fractional max weight', forged({ maxWeight: 10.5 }), 'maxWeight'],
    ['a deadline above 24 h', forged({ deadlines: { ...valid.deadlines, unmaskMs: MAX_DEADLINE_MS + 1 } }), 'deadlines.unmaskMs'],
    ['a fractional deadline', forged({ deadlines: { ...valid.deadlines, shareKeysMs: 1.5 } }), 'deadlines.shareKeysMs'],
    ['a missing deadline', forged({ deadlines: { ...valid.deadlines, advertiseKeysMs: undefined } }), 'deadlines.advertiseKeysMs'],
    ['no deadlines at all', forged({ deadlines: undefined }), 'deadlines.advertiseKeysMs'],
    ['plaintext that is not a boolean', forged({ plaintext: 'false' }), 'plaintext'],
    ['hyper-parameters that are not an object', forged({ hyperParameters: null }), 'hyperParameters'],
    ['a hyper-parameter with an empty key', forged({ hyperParameters: { '': 1 } }), 'hyperParameters[""]'],
    ['an infinite hyper-parameter', forged({ hyperParameters: { lr: Infinity } }), 'hyperParameters["lr"]'],
    ['a hyper-parameter that is an object', forged({ hyperParameters: { lr: { value: 1 } } }), 'hyperParameters["lr"]'],
    ['a null hyper-parameter', forged({ hyperParameters: { lr: null } }), 'hyperParameters["lr"]'],
  ] as const)('refuses %s, naming the field', (_name, config, field) => {
    const error = refusal(() => validateRoundConfig(config as RoundConfig));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ROUND_CONFIG', stage: 'round_config' });
    expect(error.message).toContain(`RoundConfig.${field}`);
  });

  it('refuses more participants than Shamir has x coordinates', () => {
    const many = Array.from({ length: MAX_PARTICIPANTS + 1 }, (_, index) => `s${String(index).padStart(6, '0')}`);
    const error = refusal(() => validateRoundConfig(forged({ participants: many, neighbourDegree: MAX_PARTICIPANTS, reconstructionThreshold: MAX_PARTICIPANTS })));
    expect(error.message).toContain(`between 2 and ${MAX_PARTICIPANTS}`);
  });

  it('accepts each boundary: 24 h and 1 ms deadlines, E_max = M, 2^30 - 1 parameters, one evaluation example, weight 1', () => {
    const boundaries = [
      forged({ deadlines: { ...valid.deadlines, unmaskMs: MAX_DEADLINE_MS, commitMs: 1 } }),
      layout({ maxEvalExamples: SCALE }),
      layout({ maxEvalExamples: 1 }),
      segments({ length: 2 ** 29, bound: 1 }, { length: 2 ** 29 - 1, bound: 1 }),
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

describe('round ids', () => {
  it('take counters in [0, 2^64) and 16 random bytes, and read the counter back from any view', () => {
    expect(roundCounter(makeRoundId(0n, new Uint8Array(16)))).toBe(0n);
    expect(roundCounter(makeRoundId((1n << 64n) - 1n, new Uint8Array(16)))).toBe((1n << 64n) - 1n);
    expect(refusal(() => makeRoundId(1n << 64n, new Uint8Array(16))).reason).toBe('INVALID_ROUND_COUNTER');
    expect(refusal(() => makeRoundId(-1, new Uint8Array(16))).reason).toBe('INVALID_ROUND_COUNTER');
    expect(() => makeRoundId(1, new Uint8Array(15))).toThrow();
    // A round id inside a larger buffer (as a decoder hands it out) reads its own counter.
    const framed = new Uint8Array(40);
    framed.set(makeRoundId(0x0a0b0c0dn, new Uint8Array(16).fill(1)), 8);
    expect(roundCounter(framed.subarray(8, 32))).toBe(0x0a0b0c0dn);
    expect(() => roundCounter(framed.subarray(8, 31))).toThrow();
  });
});
