/**
 * Orders live revocations against ledger appends, so that every record the coordinator writes verifies
 * with the CA's CRL (`fedgate verify --crl`). The verifier refuses a signature whose certificate the CRL
 * lists with a revocation date at or before the record's commit time (crypto/secagg/commit-chain.ts), and
 * a CRL dates revocations to the second (RFC 5280 section 5.1.2.6, certs/crl.ts). Both hold when:
 *
 *  - a revocation runs alone, from choosing its date until the serial is in the coordinator's live set
 *    (CA record, signed CRL, revocations.json, session closed), and its date is a whole second strictly
 *    after every commit time already written;
 *  - an append runs alone, from choosing its commit time, through the last check of its signers against
 *    the live set, to the record being durable.
 *
 * Then a record written before a revocation carries a commit time below the revocation's date, and a
 * record written after it was checked against a live set that already held the serial: a revoked
 * signer's signature never counts toward a quorum recorded after its revocation.
 *
 * A revocation is dated to the whole second it starts in (never in the future: the CA also signs its CRL
 * with that thisUpdate); when a record was written in that same second, the revocation waits inside the
 * fence for the next second, at most one second, during which appends wait too.
 */

export class RevocationFence {
  private tail: Promise<unknown> = Promise.resolve();
  private lastCommittedAtMs: number;

  /**
   * @param lastCommittedAt the commit time of the ledger's head, so a revocation right after a restart
   *   is still dated after it (even if the clock stepped back)
   * @param clock the wall clock in ms (tests pass their own). @default Date.now
   */
  constructor(
    lastCommittedAt?: Date,
    private readonly clock: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ) {
    this.lastCommittedAtMs = lastCommittedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  }

  /**
   * Runs `append` alone with the record's commit time: the wall clock, never earlier than the commit time
   * before it. `append` re-checks the signers against the live revocation set and writes the record.
   */
  commit<T>(append: (committedAt: Date) => Promise<T>): Promise<T> {
    return this.exclusive(() => {
      const committedAt = new Date(Math.max(this.clock(), this.lastCommittedAtMs));
      this.lastCommittedAtMs = committedAt.getTime();
      return append(committedAt);
    });
  }

  /**
   * Runs `revoke` alone with the revocation's date (revocationDate). `revoke` must make the serials live
   * before it resolves: appends wait for it.
   */
  revoke<T>(revoke: (revokedAt: Date) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      const revokedAt = revocationDate(this.clock(), this.lastCommittedAtMs);
      for (let wait = revokedAt.getTime() - this.clock(); wait > 0; wait = revokedAt.getTime() - this.clock()) await this.sleep(wait);
      return revoke(revokedAt);
    });
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/**
 * The date of a revocation starting at `nowMs`: the whole second it starts in, or, when a record was
 * committed in that second or later, the first whole second strictly after that commit (the caller
 * waits for it). Whole seconds because a CRL keeps no more; strictly after the last commit because the
 * verifier refuses signatures made at or after the date.
 */
export function revocationDate(nowMs: number, lastCommittedAtMs: number): Date {
  const second = (ms: number): number => Math.floor(ms / 1000) * 1000;
  const afterLastCommit = Number.isFinite(lastCommittedAtMs) ? second(lastCommittedAtMs) + 1000 : Number.NEGATIVE_INFINITY;
  return new Date(Math.max(second(nowMs), afterLastCommit));
}
