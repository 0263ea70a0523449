/**
 * Unmask and Commit on the coordinator's side: a wrong revealed share is detected and attributed while
 * the aggregate stays exact; a masked upload looks uniform and says nothing about its input; the commit
 * quorum is more than half of U3 and at least t.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { NeighbourGraph } from '../../../../crypto/graph.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { ClientMessage, CommitSignatureMessage } from '../../../../crypto/secagg/messages.js';
import { commitQuorum } from '../../../../crypto/secagg/server-commit.js';
import { uploadBytes } from '../../../../crypto/secagg/transcript.js';
import type { LocalUpdate } from '../../../../crypto/secagg/update-vector.js';
import {
  RoundDriver,
  cachedFederation,
  expectedSum,
  simulateRound,
  testPolicy,
  testRoundConfig,
  type TestFederation,
} from '../../../support/secagg-sim.js';
import { lyingUnmaskAnswer } from '../../../support/unmask-lie.js';

let federation: TestFederation;
const ids = () => federation.sites.map((site) => site.siteId);
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'unm-');
}, 300_000);

describe('Unmask with a wrong share', () => {
  it.each(['self_mask', 'mask_key'] as const)('detects a bad %s share, names the (dealer, holder) pair and still sums exactly', (secret) => {
    const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 100 });
    // For a mask_key reconstruction one site must drop after ShareKeys.
    const dropped = 'unm-07';
    let cheat: { dealer: string; holder: string } | undefined;
    const driver: RoundDriver = new RoundDriver({
      federation,
      config,
      drops: secret === 'mask_key' ? new Map([[dropped, 'masked_input' as const]]) : new Map(),
      outbox: (siteId: string, message: ClientMessage): ClientMessage => {
        if (message.stage !== 'unmask') return message;
        const graph = driver.server.neighbourGraph as NeighbourGraph;
        const dealer = secret === 'mask_key' ? dropped : 'unm-00';
        // The first holder other than the dealer lies (its share is in the first t-subset tried).
        if (siteId !== graph.closedNeighbourhood(dealer).find((holder) => holder !== dealer)) return message;
        cheat = { dealer, holder: siteId };
        return lyingUnmaskAnswer(driver, federation, siteId, message, dealer, 0x5a);
      },
    });
    const result = driver.run();
    expect(cheat).toBeDefined();
    expect(result.outcome).toBe('aggregated');
    expect(result.aggregate?.inconsistentShares).toEqual([{ ...cheat, secret }]);
    expect(result.aggregate?.sum).toEqual(expectedSum(result));
  });
});

/** Pearson's chi-square statistic of the byte histogram against the uniform distribution. */
function byteChiSquare(bytes: Uint8Array): number {
  const counts = new Float64Array(256);
  for (const byte of bytes) counts[byte] = (counts[byte] as number) + 1;
  const expected = bytes.length / 256;
  let statistic = 0;
  for (const count of counts) statistic += (count - expected) ** 2 / expected;
  return statistic;
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let meanA = 0;
  let meanB = 0;
  for (let i = 0; i < n; i++) {
    meanA += a[i] as number;
    meanB += b[i] as number;
  }
  meanA /= n;
  meanB /= n;
  let covariance = 0;
  let varianceA = 0;
  let varianceB = 0;
  for (let i = 0; i < n; i++) {
    const da = (a[i] as number) - meanA;
    const db = (b[i] as number) - meanB;
    covariance += da * db;
    varianceA += da * da;
    varianceB += db * db;
  }
  return covariance / Math.sqrt(varianceA * varianceB);
}

describe('a masked upload', () => {
  it('looks uniform (byte chi-square) and is uncorrelated with its input', () => {
    const d = 20_000;
    const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: d });
    // A very structured input: a slow sine wave at full weight.
    const update = (): LocalUpdate => ({
      delta: Float32Array.from({ length: d }, (_, i) => 0.8 * Math.sin(i / 50)),
      weight: 1,
      evalLossSum: 10,
      evalCorrect: 90,
      evalExamples: 100,
    });
    const result = simulateRound({ federation, config, update });
    expect(result.outcome).toBe('aggregated');
    const siteId = 'unm-03';
    const upload = result.sent.get(siteId)!.find((message) => message.stage === 'masked_input');
    if (upload?.stage !== 'masked_input') throw new Error('no upload');
    const masked = upload.maskedVector;
    const quantized = result.quantized.get(siteId)!;
    // 255 degrees of freedom: the 1e-4 upper quantile is about 347.
    const critical = 347;
    expect(byteChiSquare(uploadBytes(masked))).toBeLessThan(critical);
    // The same test does reject the unmasked vector, so it can tell.
    expect(byteChiSquare(uploadBytes(quantized))).toBeGreaterThan(critical);
    const signedInput = Int32Array.from(quantized);
    const bound = 4.5 / Math.sqrt(masked.length);
    expect(Math.abs(correlation(masked, signedInput))).toBeLessThan(bound);
    expect(Math.abs(correlation(masked.subarray(0, d), update().delta))).toBeLessThan(bound);
    // Sanity: the input is strongly correlated with itself through the quantizer.
    expect(correlation(signedInput.subarray(0, d), update().delta)).toBeGreaterThan(0.99);
  });
});

describe('a plaintext round', () => {
  it('uploads the quantized vector unmasked, reveals nothing and still signs every stage', () => {
    const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 50, plaintext: true });
    const result = simulateRound({ federation, config, policy: () => testPolicy({ allowPlaintext: true }), commit: true });
    expect(result.outcome).toBe('aggregated');
    expect(result.aggregate?.sum).toEqual(expectedSum(result));
    for (const siteId of ids()) {
      const upload = result.sent.get(siteId)!.find((message) => message.stage === 'masked_input');
      if (upload?.stage !== 'masked_input') throw new Error('no upload');
      expect(upload.maskedVector).toEqual(result.quantized.get(siteId));
      expect(result.reveals.get(siteId)?.shares).toEqual([]);
    }
    expect(result.commitStatus?.committed).toBe(true);
  });
});

describe('Commit', () => {
  it('quorum is more than half of U3 and at least t', () => {
    expect(commitQuorum(8, 3)).toBe(5);
    expect(commitQuorum(9, 3)).toBe(5);
    expect(commitQuorum(4, 3)).toBe(3);
    expect(commitQuorum(5, 4)).toBe(4);
    expect(commitQuorum(20, 14)).toBe(14);
  });

  it('commits at the quorum; bad signatures are ignored and reported; non-members are refused', () => {
    const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 20 });
    const dropped = 'unm-06';
    const driver = new RoundDriver({ federation, config, drops: new Map([[dropped, 'masked_input' as const]]) });
    const aggregate = driver.unmask(driver.signConsistency(driver.maskInputs(driver.dealShares(driver.revealNonces(driver.advertise())))));
    expect(aggregate.maskedSurvivors).toHaveLength(7);
    const hashes = {
      previousModelHash: config.modelHash,
      aggregateHash: new Uint8Array(randomBytes(32)),
      newModelHash: new Uint8Array(randomBytes(32)),
      optimizerStateHash: new Uint8Array(randomBytes(32)),
    };
    const request = driver.server.beginCommit(hashes);
    const signatures = new Map<string, CommitSignatureMessage>();
    for (const siteId of aggregate.maskedSurvivors) signatures.set(siteId, driver.client(siteId).commit(request, hashes));
    const survivors = [...signatures.keys()];
    expect(commitQuorum(7, 3)).toBe(4);
    for (const siteId of survivors.slice(0, 3)) driver.server.receive(siteId, signatures.get(siteId)!);
    expect(driver.server.commitStatus()).toMatchObject({ committed: false, required: 4, signers: survivors.slice(0, 3) });
    expect(() => driver.server.commitRecord()).toThrow(expect.objectContaining({ reason: 'COMMIT_QUORUM_NOT_REACHED' }));

    const liar = survivors[3]!;
    const forged = { ...signatures.get(liar)!, signature: new Uint8Array(randomBytes(256)) };
    expect(() => driver.server.receive(liar, forged)).toThrow(expect.objectContaining({ code: 'PERMISSION_DENIED', reason: 'BAD_SIGNATURE' }));
    const other = survivors[4]!;
    const otherHashes = { ...signatures.get(other)!, newModelHash: new Uint8Array(32) };
    expect(() => driver.server.receive(other, otherHashes)).toThrow(expect.objectContaining({ reason: 'COMMIT_MISMATCH' }));
    expect(driver.server.commitStatus()).toMatchObject({
      committed: false,
      rejected: [
        { siteId: liar, reason: 'BAD_SIGNATURE' },
        { siteId: other, reason: 'COMMIT_MISMATCH' },
      ],
    });
    // A site outside U3 (it dropped after ShareKeys) cannot sign the commit, even with a valid-looking message.
    expect(() => driver.server.receive(dropped, { ...signatures.get(liar)! })).toThrow(expect.objectContaining({ code: 'PERMISSION_DENIED' }));

    driver.server.receive(other, signatures.get(other)!);
    const status = driver.server.commitStatus();
    expect(status.committed).toBe(true);
    const record = driver.server.commitRecord();
    expect(record.maskedSurvivors).toEqual(aggregate.maskedSurvivors);
    expect(record.signatures.map((entry) => entry.siteId)).toEqual([...survivors.slice(0, 3), other].sort());
    expect(record.signatures.every((entry) => typeof entry.certificate === 'string')).toBe(true);
    expect(record.hashes.aggregateHash).toEqual(hashes.aggregateHash);
    expect(() => driver.server.receive(other, signatures.get(other)!)).toThrow(SecAggError);
  });
});
