/**
 * The figures of a federated evaluation as the Admin API returns them (admin-wire.ts metricsMessage,
 * RoundMetrics in admin.proto) and as `fedgate rounds` prints them (cli/commands/admin-format.ts):
 * a class-index task's message keeps exactly the fields it had; a multi-label or regression task's gets
 * its kind, its summed extra slots and the figures derived from them, from the ledger's decimal strings
 * as from numbers.
 */
import { describe, expect, it } from 'vitest';
import { metricsMessage } from '../../../../coordinator/admin/admin-wire.js';
import { roundsText } from '../../../../cli/commands/admin-format.js';
import type { CommittedRound } from '../../../../proto/admin-messages.js';

const common = { participants: 3, survivors: 3, weightSum: 1.5 };

describe('metricsMessage', () => {
  it('a class-index task: the eight fields it always had, nothing else', () => {
    expect(metricsMessage({ ...common, evalLossSum: 5, evalCorrect: 8, evalExamples: 10 })).toEqual({
      ...common,
      evalLossSum: 5,
      evalCorrect: 8,
      evalExamples: 10,
      evalLoss: 0.5,
      evalAccuracy: 0.8,
    });
  });

  it('a regression task: the summed slots and MSE, MAE, RMSE, R^2, also from the decimal strings the ledger stores', () => {
    // y = [1, 2, 3, 4], predictions [1, 2, 3, 6]: SSE 4, SAE 2, sum y 10, sum y^2 30, SST 5.
    const stored = { ...common, evalLossSum: '4', evalCorrect: '0', evalExamples: '4', evalOutputs: '1', evalSquaredErrorSum: '4', evalAbsoluteErrorSum: '2', evalTargetSum: '10', evalTargetSquareSum: '30' };
    const message = metricsMessage(stored);
    expect(message).toMatchObject({ evalKind: 'regression', evalOutputs: 1, evalSquaredErrorSum: 4, evalTargetSquareSum: 30, evalMse: 1, evalMae: 0.5, evalRmse: 1 });
    expect(message?.evalR2).toBeCloseTo(0.2, 12);
    expect(message).not.toHaveProperty('evalF1');
    // Nothing evaluated: the sums are there, the figures are not.
    expect(metricsMessage({ ...stored, evalExamples: '0' })).not.toHaveProperty('evalR2');
  });

  it('a multi-label task: the label counts and micro precision, recall, F1', () => {
    const message = metricsMessage({ ...common, evalLossSum: 1, evalCorrect: 3, evalExamples: 10, evalOutputs: 5, evalTruePositives: 6, evalFalsePositives: 2, evalFalseNegatives: 4 });
    expect(message).toMatchObject({ evalKind: 'multi_label', evalOutputs: 5, evalTruePositives: 6, evalPrecision: 0.75, evalRecall: 0.6, evalAccuracy: 0.3 });
    expect(message?.evalF1).toBeCloseTo(2 / 3, 12);
    expect(message).not.toHaveProperty('evalMse');
  });
});

describe('fedgate rounds', () => {
  const round = (metrics: Record<string, number>): CommittedRound =>
    ({
      sequence: 1,
      roundId: { counter: 1, nonce: Buffer.alloc(16) },
      participants: ['a', 'b', 'c'],
      survivors: ['a', 'b', 'c'],
      signers: [],
      modelHash: Buffer.alloc(0),
      onnxSha256: Buffer.alloc(0),
      committedAtUnixMs: 0,
      metrics: metricsMessage({ ...common, ...metrics }),
    }) as unknown as CommittedRound;

  it('keeps its columns for a class-index task and adds EVALUATION for a regression one', () => {
    expect(roundsText([round({ evalLossSum: 5, evalCorrect: 8, evalExamples: 10 })]).split('\n')[0]).toMatch(/^ROUND +COUNTER +SURVIVORS +ACCURACY +LOSS +MODEL +ONNX SHA-256 +COMMITTED$/);
    const text = roundsText([round({ evalLossSum: 4, evalCorrect: 0, evalExamples: 4, evalOutputs: 1, evalSquaredErrorSum: 4, evalAbsoluteErrorSum: 2, evalTargetSum: 10, evalTargetSquareSum: 30 })]);
    expect(text.split('\n')[0]).toMatch(/ COMMITTED +EVALUATION$/);
    expect(text).toContain('R^2 0.2000, RMSE 1.0000, MSE 1.0000, MAE 0.50000');
  });
});
