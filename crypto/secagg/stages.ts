/**
 * The stage names of the SecAgg+ round (DESIGN.md "A round"), defined once, as Flower keeps its
 * secaggplus_constants.py: the `stage` of every plain message (messages.ts), the labels that signatures
 * are made for (transcript.ts), and the stages the coordinator times. proto/ maps them onto the
 * federation.proto RoundStage enum and the Session oneof members in one codec each.
 */

/** Every stage name, by message: what a site sends (left column of Bonawitz et al. 2017, Fig. 4) and what the coordinator answers. */
export const STAGE = Object.freeze({
  advertiseKeys: 'advertise_keys',
  keyList: 'key_list',
  nonceReveal: 'nonce_reveal',
  graph: 'graph',
  shareKeys: 'share_keys',
  shareDelivery: 'share_delivery',
  maskedInput: 'masked_input',
  consistencyRequest: 'consistency_request',
  consistencyCheck: 'consistency_check',
  unmaskRequest: 'unmask_request',
  unmask: 'unmask',
  commitRequest: 'commit_request',
  commit: 'commit',
} as const);

/** The stages a site sends a message in, in round order. */
export const CLIENT_STAGES = Object.freeze([
  STAGE.advertiseKeys,
  STAGE.nonceReveal,
  STAGE.shareKeys,
  STAGE.maskedInput,
  STAGE.consistencyCheck,
  STAGE.unmask,
  STAGE.commit,
] as const);

/** `stage` of each message a site sends to the coordinator. */
export type ClientStage = (typeof CLIENT_STAGES)[number];

/** The stages the coordinator sends a message in (the RoundConfig itself opens the round), in round order. */
export const SERVER_STAGES = Object.freeze([
  STAGE.keyList,
  STAGE.graph,
  STAGE.shareDelivery,
  STAGE.consistencyRequest,
  STAGE.unmaskRequest,
  STAGE.commitRequest,
] as const);

/** `stage` of each message the coordinator sends to sites. */
export type ServerStage = (typeof SERVER_STAGES)[number];

/**
 * The labels under "fedgate/v1/" that signatures are made for, one per signed message. They are part of
 * the signed bytes: renaming one breaks every signature made before. The NonceReveal message signs H(L),
 * hence its label key_list.
 */
export const SIGNED_STAGE = Object.freeze({
  advertiseKeys: STAGE.advertiseKeys,
  keyList: STAGE.keyList,
  shareKeys: STAGE.shareKeys,
  maskedInput: STAGE.maskedInput,
  consistencyCheck: STAGE.consistencyCheck,
  unmask: STAGE.unmask,
  commit: STAGE.commit,
} as const);
