/**
 * federation.proto's RoundStage enum and the SecAgg+ stage names of crypto/secagg/stages.ts, mapped in
 * one place. The enum names the steps of DESIGN.md "A round"; the graph exchange (nonce_reveal) belongs
 * to step 2, AdvertiseKeys.
 */
import { STAGE, type ClientStage } from '../crypto/secagg/stages.js';
import { RoundStage, type RoundStage__Output } from './generated/fedgate/v1/RoundStage.js';

/** Every RoundStage enum name, ROUND_STAGE_UNSPECIFIED included. */
export const ROUND_STAGES: readonly RoundStage__Output[] = Object.freeze(Object.values(RoundStage));

const WIRE_STAGE: Readonly<Record<ClientStage, RoundStage__Output>> = Object.freeze({
  [STAGE.advertiseKeys]: RoundStage.ROUND_STAGE_ADVERTISE_KEYS,
  [STAGE.nonceReveal]: RoundStage.ROUND_STAGE_ADVERTISE_KEYS,
  [STAGE.shareKeys]: RoundStage.ROUND_STAGE_SHARE_KEYS,
  [STAGE.maskedInput]: RoundStage.ROUND_STAGE_MASKED_INPUT,
  [STAGE.consistencyCheck]: RoundStage.ROUND_STAGE_CONSISTENCY_CHECK,
  [STAGE.unmask]: RoundStage.ROUND_STAGE_UNMASK,
  [STAGE.commit]: RoundStage.ROUND_STAGE_COMMIT,
});

/** The RoundStage a site's message of `stage` belongs to. */
export function roundStageOf(stage: ClientStage): RoundStage__Output {
  return WIRE_STAGE[stage];
}

/** True for the enum names of a real stage (not UNSPECIFIED, not a number the loader left unnamed). */
export function isRoundStage(value: unknown): value is RoundStage__Output {
  return value !== RoundStage.ROUND_STAGE_UNSPECIFIED && ROUND_STAGES.some((stage) => stage === value);
}
