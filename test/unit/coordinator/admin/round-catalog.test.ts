import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RoundCatalog, SUMMARY_CACHE_SIZE } from '../../../../coordinator/admin/round-catalog.js';
import { COMMIT_BODY_KIND, type CommitBody } from '../../../../crypto/secagg/commit-record-codec.js';
import { Ledger } from '../../../../coordinator/state/ledger.js';
import { encodeRoundConfig } from '../../../../crypto/secagg/config-codec.js';
import { testRoundConfig } from '../../../support/secagg-sim.js';

const hashOf = (label: string): string => createHash('sha256').update(label).digest('hex');
const INITIAL = hashOf('model 0');

/** A structurally valid commit body for round `round` (signatures are not checked by the catalog). */
function body(round: number, modelLabel = `model ${round}`, previousLabel = `model ${round - 1}`): CommitBody {
  const config = testRoundConfig({ participants: ['site-1', 'site-2', 'site-3'], degree: 2, parameters: 10, counter: round });
  return {
    kind: COMMIT_BODY_KIND,
    roundCounter: String(round),
    roundConfig: Buffer.from(encodeRoundConfig(config)).toString('base64'),
    roundConfigHash: hashOf(`config ${round}`),
    keyList: [],
    keyListHash: hashOf(`keys ${round}`),
    survivors: ['site-1', 'site-2'],
    previousModelHash: hashOf(previousLabel),
    aggregateHash: hashOf(`aggregate ${round}`),
    newModelHash: hashOf(modelLabel),
    optimizerStateHash: hashOf(`optimizer ${round}`),
    signatures: [],
    committedAt: new Date(Date.UTC(2026, 0, 1, 0, round)).toISOString(),
    metrics: { evalExamples: '100' },
  };
}

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-catalog-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('RoundCatalog over a disk-backed ledger', () => {
  it('pages rounds read from the ledger files and follows appends', async () => {
    const ledger = await Ledger.open(directory);
    const catalog = new RoundCatalog(ledger, () => INITIAL);
    expect(await catalog.modelHashOfRound(0)).toBe(INITIAL);
    for (let round = 1; round <= 5; round++) await ledger.append(body(round));
    const first = await catalog.page(2, '', false);
    expect(first.rounds.map((round) => round.sequence)).toEqual([1, 2]);
    expect(first.total).toBe(5);
    const newest = await catalog.page(2, '', true);
    expect(newest.rounds.map((round) => round.sequence)).toEqual([5, 4]);
    expect((await catalog.page(10, newest.nextPageToken, true)).rounds.map((round) => round.sequence)).toEqual([3, 2, 1]);
    expect(await catalog.modelHashOfRound(0)).toBe(INITIAL);
    expect(await catalog.modelHashOfRound(3)).toBe(hashOf('model 3'));
    await expect(catalog.round(6)).rejects.toThrow(/rounds 1\.\.5/);
  });

  it('finds the latest round of a model hash, including rounds committed after the first lookup', async () => {
    const ledger = await Ledger.open(directory);
    const catalog = new RoundCatalog(ledger, () => INITIAL);
    await ledger.append(body(1));
    await ledger.append(body(2, 'model 1', 'model 1')); // a round that kept the model unchanged
    expect(await catalog.roundOfModelHash(hashOf('model 1'))).toBe(2);
    expect(await catalog.roundOfModelHash(INITIAL)).toBe(0);
    expect(await catalog.roundOfModelHash(hashOf('model 3'))).toBeUndefined();
    await ledger.append(body(3, 'model 3', 'model 1'));
    expect(await catalog.roundOfModelHash(hashOf('model 3'))).toBe(3);
  });

  it('keeps a bounded number of summaries however many rounds are listed', async () => {
    const ledger = await Ledger.open(directory);
    const rounds = SUMMARY_CACHE_SIZE + 20;
    for (let round = 1; round <= rounds; round++) await ledger.append(body(round));
    const catalog = new RoundCatalog(ledger, () => INITIAL);
    let token = '';
    let seen = 0;
    do {
      const page = await catalog.page(100, token, false);
      seen += page.rounds.length;
      token = page.nextPageToken;
    } while (token !== '');
    expect(seen).toBe(rounds);
    expect(catalog.cachedSummaries).toBe(SUMMARY_CACHE_SIZE);
    // The most recently used stay; the oldest were dropped and are read again on demand.
    expect((await catalog.round(1)).modelHash).toBe(hashOf('model 1'));
    expect(catalog.cachedSummaries).toBe(SUMMARY_CACHE_SIZE);
  });
});
