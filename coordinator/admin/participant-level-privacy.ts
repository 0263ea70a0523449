/**
 * The epsilon GetStatus reports for a task's participant-level DP (admin.proto ParticipantLevelPrivacy):
 * the curve of each committed round, computed from the RoundConfig the ledger holds for it (its
 * distributedDp, |U|, t and the model's size: crypto/secagg participantLevelRoundCurve at t survivors,
 * the worst case every completed round allows), composed over the rounds. It is the curve each site
 * charges to its own budget before it trains, on the same grid of orders (crypto/dp DEFAULT_ORDERS), so
 * the figure is what a site that trained in every committed round spent through this task's
 * participant-level DP. Rounds can differ (a round of fewer sites has another scale and t), hence one
 * curve per round rather than a multiple of one.
 *
 * Memory stays flat over a long run: the composed curve and the last round's are kept, and each ledger
 * record is read once, when GetStatus first asks after it was appended.
 */
import { composeCurves, DEFAULT_ORDERS, rdpToEpsilon, type RdpCurve } from '../../crypto/dp/rdp.js';
import { participantLevelRoundCurve } from '../../crypto/secagg/distributed-dp-round.js';
import type { DistributedDpRequirement } from '../../crypto/secagg/dp-fields.js';
import type { ParticipantLevelPrivacyMessage } from '../../proto/admin-messages.js';
import { parseLedgerCommit } from '../federation/ledger-commit.js';
import type { Ledger } from '../state/ledger.js';

export class ParticipantLevelAccount {
  private total: RdpCurve = { orders: DEFAULT_ORDERS, rdp: DEFAULT_ORDERS.map(() => 0) };
  private last: RdpCurve | undefined;
  private counted = 0;
  private indexed = 0;
  private indexing: Promise<void> = Promise.resolve();

  /**
   * @param requirement the task's privacy.participantLevel (reported as the public parameters)
   * @param ledger the federation's ledger (appended to while the coordinator runs)
   */
  constructor(
    readonly requirement: DistributedDpRequirement,
    private readonly ledger: Pick<Ledger, 'length' | 'read'>,
  ) {}

  /** The ParticipantLevelPrivacy of GetStatus at `delta` (already checked by the caller). */
  async message(delta: number): Promise<ParticipantLevelPrivacyMessage> {
    await this.catchUp();
    const { requirement } = this;
    // Nothing released yet is epsilon 0 (the conversion alone would print log(1/delta)/(a_max - 1) > 0).
    const epsilonOf = (curve: RdpCurve | undefined): number => (curve === undefined || this.counted === 0 ? 0 : rdpToEpsilon(curve, delta).epsilon);
    return {
      mechanism: requirement.mechanism,
      clipNorm: requirement.clipNorm,
      noiseMultiplier: requirement.noiseMultiplier,
      toleratedColluders: requirement.toleratedColluders,
      ringBits: requirement.ringBits,
      roundsCounted: this.counted,
      delta,
      epsilonLastRound: epsilonOf(this.last),
      epsilonSpent: epsilonOf(this.total),
    };
  }

  /** Adds the curves of the rounds committed since the last call, one caller at a time. */
  private catchUp(): Promise<void> {
    this.indexing = this.indexing.then(async () => {
      while (this.indexed < this.ledger.length) {
        const sequence = this.indexed + 1;
        const { record } = parseLedgerCommit((await this.ledger.read(sequence)).body, `ledger record ${sequence}`);
        if (record.config.distributedDp !== undefined) {
          const curve = participantLevelRoundCurve(record.config, record.config.reconstructionThreshold, DEFAULT_ORDERS);
          this.total = composeCurves([this.total, curve], DEFAULT_ORDERS);
          this.last = curve;
          this.counted += 1;
        }
        this.indexed = sequence;
      }
    });
    return this.indexing;
  }
}
