/**
 * A site's own defences against a coordinator that replays or multiplies rounds (DESIGN.md "What a site
 * checks for itself"; docs/protocol.md "Site checks"). One guard per site, shared by every RoundSession
 * of the daemon across reconnects, over the SiteStateStore of its state_dir:
 * - one round at a time: a RoundStart that arrives while another round of this site runs is refused
 *   (ROUND_CONCURRENT) and the running round is left as it is;
 * - fresh rounds only: the round counter (first 8 bytes of the round id, big-endian) must be above the
 *   highest this site ever accepted for the federation, and is persisted before the site makes a key
 *   (ROUND_NOT_FRESH), so a replayed RoundStart is refused even after a reconnect or a restart;
 * - one contribution per model: once this site's input may have entered an unmasked aggregate on model
 *   hash H it never takes part in another round on H (MODEL_ALREADY_CONTRIBUTED), so two aggregates on
 *   H never differ by this site's update alone;
 * - one evaluation per model: the metrics of H leave this site in at most one unmasked aggregate - the
 *   training round on H (purpose 'train_and_evaluate') or an evaluation-only round on H (purpose
 *   'evaluate'), never both and never twice (MODEL_ALREADY_EVALUATED). Otherwise a coordinator could run
 *   two evaluations of H whose survivor sets differ by this site alone and read its exact metrics off the
 *   difference. A round that only trains on H (purpose 'train', metric slots 0) is what a coordinator
 *   runs on a model it already had evaluated; it is still a contribution on H. The rule binds every
 *   member of U through the one RoundConfig they all sign: a round on H either asks for metrics, and
 *   every site that evaluated H leaves it (so the sites that report are the survivors the site policy
 *   already counts, |U3| >= min_participants), or it asks for none, and no site reports any.
 */
import { toHex } from '../../crypto/bytes.js';
import { roundCounter, type RoundConfig } from '../../crypto/secagg/config.js';
import { SITE_DEFENCE_REASONS } from '../../crypto/secagg/site-refusals.js';
import { FedgateError } from '../../platform/index.js';
import type { SiteStateStore } from '../state/site-state.js';

/** What `claim` found: the round may start, or another round (or this same one) is already running. */
export type RoundClaim = 'claimed' | 'same_round_running' | 'other_round_running';

export class RoundGuard {
  /** Hex id of the round this site is running, if any. */
  private live: string | undefined;

  constructor(readonly state: SiteStateStore) {}

  /** Hex id of the running round, if any. */
  get liveRound(): string | undefined {
    return this.live;
  }

  /**
   * Called synchronously when a RoundStart arrives, before anything else: the round becomes this site's
   * running round unless one already runs. A coordinator that repeats the running round's id gets
   * 'same_round_running' and the caller must leave the running round untouched.
   */
  claim(roundId: Uint8Array): RoundClaim {
    const key = toHex(roundId);
    if (this.live === key) return 'same_round_running';
    if (this.live !== undefined) return 'other_round_running';
    this.live = key;
    return 'claimed';
  }

  /** The round ended for this site (in any way): another may start. A no-op for a round that is not running. */
  release(roundId: Uint8Array): void {
    if (this.live === toHex(roundId)) this.live = undefined;
  }

  /**
   * Accepts `config` for this site's state, after the policy check and before any key is made: refuses
   * a counter that is not above every counter accepted before (a replay says ROUND_NOT_FRESH even when
   * its model was contributed to), then a model this site already contributed to, and only then
   * persists the counter. Resolves once the counter is on disk; a refused round moves nothing.
   */
  async admit(config: RoundConfig): Promise<void> {
    const counter = roundCounter(config.roundId);
    const highest = this.state.highestRoundCounter(config.federationId);
    if (highest !== undefined && counter <= highest) {
      throw siteDefenceError('ROUND_NOT_FRESH', `round counter ${counter} is not above ${highest}, the highest this site accepted: a replayed or stale round`);
    }
    const model = toHex(config.modelHash);
    const contributed = this.state.hasContributed(config.federationId, config.modelHash);
    const evaluated = this.state.hasEvaluated(config.federationId, config.modelHash);
    if (config.purpose === 'evaluate') {
      // A contribution on H reported H's metrics too (unless its round only trained: refusing then costs nothing).
      if (evaluated || contributed) {
        throw siteDefenceError('MODEL_ALREADY_EVALUATED', `this site's evaluation of model ${model} was already unmasked (${evaluated ? 'an evaluation-only round' : 'the round it contributed to'}); it reports a model's metrics once`);
      }
    } else {
      if (contributed) throw siteDefenceError('MODEL_ALREADY_CONTRIBUTED', `this site's input was already unmasked in an aggregate on model ${model}; it contributes once per model`);
      if (evaluated && config.purpose === 'train_and_evaluate') {
        throw siteDefenceError('MODEL_ALREADY_EVALUATED', `this round asks for the evaluation of model ${model}, whose evaluation this site already reported in an evaluation-only round; it reports a model's metrics once`);
      }
    }
    // The store checks the counter again under its own write lock: it is the authority.
    await this.state.acceptRoundCounter(config.federationId, counter);
  }

  /**
   * Records, persisted before it resolves, that this site's input may enter an unmasked aggregate on the
   * round's model: called right before the site sends its Unmask answer (or, in a plaintext round,
   * before it uploads its input, which then is its update in the clear). An evaluation-only round records
   * an evaluation of the model, not a contribution: a later round may still train on it (purpose 'train').
   */
  async recordContribution(config: RoundConfig): Promise<void> {
    if (config.purpose === 'evaluate') await this.state.recordEvaluation(config.federationId, config.modelHash);
    else await this.state.recordContribution(config.federationId, config.modelHash);
  }
}

export function siteDefenceError(reason: keyof typeof SITE_DEFENCE_REASONS, message: string): FedgateError {
  return new FedgateError('FAILED_PRECONDITION', message, { reason: SITE_DEFENCE_REASONS[reason] });
}
