/**
 * A revocation that takes a commit's quorum away between the last signature and the ledger append
 * (issue 11, item 1), in the in-memory federation (real SecAgg+, signatures and training, no network):
 * the record is not appended with the revoked signatures, the revoked members count as refusing, and
 * when too few members remain to sign, the round aborts with COMMIT_QUORUM_MISSING and the ledger stays
 * empty; when enough remain, it commits without the revoked signer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RoundEvent } from '../../coordinator/federation/federation.js';
import { parseCommitBody } from '../../crypto/secagg/commit-record-codec.js';
import { subset } from '../../participant/data/dataset.js';
import { loadDigits } from '../../participant/data/digits.js';
import { normalize } from '../../participant/data/normalize.js';
import { partitionIid } from '../../participant/data/partition.js';
import { trainTestSplit } from '../../participant/data/split.js';
import { LOGREG_DIGITS_TASK } from '../support/admin-federation.js';
import { createInMemoryFederation, type InMemoryFederation, type InMemorySiteData } from '../support/in-memory-federation.js';

async function digitsSites(count: number): Promise<InMemorySiteData[]> {
  const digits = normalize(await loadDigits(), LOGREG_DIGITS_TASK.normalization);
  return partitionIid(digits, { clients: count, seed: 3 }).map((indices) => trainTestSplit(subset(digits, indices), { testFraction: 0.2, seed: 1 }));
}

let harness: InMemoryFederation | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** Runs until the first round ends; `revokeAtAppend` names the sites revoked at the pause point before the append. */
async function firstRound(sites: number, revokeAtAppend: (siteIds: readonly string[]) => readonly string[]): Promise<{ ended: RoundEvent; harness: InMemoryFederation; revoked: readonly string[] }> {
  const revokedSerials = new Set<string>();
  let revoked: readonly string[] = [];
  const created = await createInMemoryFederation({
    sites: await digitsSites(sites),
    task: LOGREG_DIGITS_TASK,
    rounds: 1,
    minParticipants: sites,
    stageDeadlineMs: 2000,
    revokedSerials,
    pausePoint: async () => {
      if (revoked.length > 0) return;
      revoked = revokeAtAppend(created.siteIds);
      for (const siteId of revoked) revokedSerials.add(created.testFederation.site(siteId).serial);
    },
  });
  harness = created;
  const stop = new AbortController();
  let ended: RoundEvent | undefined;
  created.federation.on('round', (event) => {
    if (event.type === 'round_started') return;
    ended ??= event;
    stop.abort();
  });
  await created.federation.run(stop.signal);
  if (ended === undefined) throw new Error('no round ended');
  return { ended, harness: created, revoked };
}

describe('a revocation between the last commit signature and the append', () => {
  it('aborts the round with COMMIT_QUORUM_MISSING, appending nothing, when the unrevoked members are too few to sign', async () => {
    // Three sites: t = 3, so the quorum is all three; one revoked signer takes it away for good.
    const { ended, harness: federation } = await firstRound(3, (siteIds) => siteIds.slice(0, 1));
    expect(ended).toMatchObject({ type: 'round_aborted', reason: 'COMMIT_QUORUM_MISSING' });
    expect(federation.federation.ledgerRecords.length).toBe(0);
  }, 120_000);

  it('commits without the revoked signer when the quorum holds without it', async () => {
    // Four sites: t = 3, quorum 3 of the four signers.
    const { ended, harness: federation, revoked } = await firstRound(4, (siteIds) => siteIds.slice(1, 2));
    expect([ended.type, ended.reason]).toEqual(['round_committed', undefined]);
    const record = parseCommitBody((await federation.federation.ledgerRecords.read(1)).body, 'record 1').record;
    expect(record.signatures.map((signature) => signature.siteId)).toEqual(federation.siteIds.filter((siteId) => !revoked.includes(siteId)));
  }, 120_000);
});
