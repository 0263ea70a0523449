/**
 * Replays an attack found by the exhaustive search (reveal-search.ts) against real SecAggClients: an
 * honest RoundDriver runs AdvertiseKeys, the graph and ShareKeys, then the test plays the malicious
 * coordinator - each honest site gets the U2 and U3 of the attack, the consistency signatures it names,
 * and colluders sign whatever closing and consistency transcript each honest site needs. The colluders
 * hand over their state (s_sk and the shares they hold), and the target's masked upload is unmasked
 * from that plus what the honest clients revealed. This checks the model against the client's real
 * acceptance checks, survivor digests and signatures, end to end.
 */
import { deriveMaskSeed } from '../../crypto/agreement.js';
import { sortSiteIds, type NeighbourGraph } from '../../crypto/graph.js';
import { sha256 } from '../../crypto/hash.js';
import { addMasks, type MaskStream } from '../../crypto/prg.js';
import { combineShares, decodeShare, type Share } from '../../crypto/shamir.js';
import { signMessage } from '../../crypto/signature.js';
import { x25519PublicKey } from '../../crypto/x25519.js';
import type { RoundKeys } from '../../crypto/secagg/client-keys.js';
import type { AcceptedDelivery } from '../../crypto/secagg/client-shares.js';
import type { SecAggClient } from '../../crypto/secagg/client.js';
import { SecAggError } from '../../crypto/secagg/errors.js';
import type { AdvertiseKeysMessage, MaskedInputClosing, MaskedInputMessage, ShareKeysMessage, UnmaskResponseMessage } from '../../crypto/secagg/messages.js';
import { SECRET_LENGTH, pairwiseMaskSign } from '../../crypto/secagg/neighbourhood.js';
import { consistencyTranscript, keyListHash, maskedInputTranscript, roundContext, survivorDigest } from '../../crypto/secagg/transcript.js';
import { bit, has, indices, type RevealModel, type Revealed, type View } from './reveal-model.js';
import type { Attack } from './reveal-search.js';
import { RoundDriver, quantizedVector, testPolicy, testRoundConfig, testUpdate, type TestFederation } from './secagg-sim.js';

export interface ReplayResult {
  /** What each honest client revealed (undefined: it refused), by model index. */
  readonly decisions: ReadonlyMap<number, Revealed | undefined>;
  /** The target's quantized input as the adversary recovers it, and as the target computed it. */
  readonly recovered: Uint32Array;
  readonly expected: Uint32Array;
}

/** A colluder hands its round secrets to the coordinator (test-only access to the client's state). */
function colluderState(client: SecAggClient): { keys: RoundKeys; delivery: AcceptedDelivery | undefined } {
  return client as unknown as { keys: RoundKeys; delivery: AcceptedDelivery | undefined };
}

export function replayAttack(federation: TestFederation, model: RevealModel, attack: Attack): ReplayResult {
  const config = testRoundConfig({ participants: federation.sites.map((site) => site.siteId), degree: model.degree, threshold: model.threshold, parameters: 16 });
  const policy = testPolicy({ minParticipants: model.minParticipants });
  const driver = new RoundDriver({ federation, config, policy: () => policy });
  const keyList = driver.advertise();
  const deliveries = driver.dealShares(driver.revealNonces(keyList));
  const graph = driver.server.neighbourGraph as NeighbourGraph;
  // Model index i is ring position i: the same circulant graph whatever the seed.
  const siteOf = (index: number): string => graph.ring[index] as string;
  const indexOf = (siteId: string): number => graph.ring.indexOf(siteId);
  for (let i = 0; i < model.ids.length; i++) {
    for (let j = 0; j < model.ids.length; j++) {
      if (i !== j && has(model.open[i] as number, j) !== graph.isNeighbour(siteOf(i), siteOf(j))) throw new Error('the replayed graph is not the model graph');
    }
  }
  const context = roundContext(config);
  const listHash = keyListHash(keyList.entries);
  const sentOf = <T>(siteId: string, stage: string): T => driver.sent.get(siteId)?.find((message) => message.stage === stage) as T;
  const key = (index: number) => federation.site(siteOf(index)).privateKey;
  const ids = (mask: number): string[] => sortSiteIds(indices(mask).map(siteOf));

  const colluders = new Map<number, { maskSecretKey: Uint8Array; held: AcceptedDelivery['held'] }>();
  for (const c of indices(attack.colluders)) {
    const client = driver.client(siteOf(c));
    const maskSecretKey = new Uint8Array(colluderState(client).keys.mask.secretKey);
    client.acceptShares(deliveries.get(siteOf(c)) as NonNullable<ReturnType<typeof deliveries.get>>);
    colluders.set(c, { maskSecretKey, held: (colluderState(client).delivery as AcceptedDelivery).held });
  }

  // ShareDelivery with the attack's U2, then the honest upload.
  const uploads = new Map<number, MaskedInputMessage>();
  for (const [h, view] of attack.views) {
    const delivery = deliveries.get(siteOf(h)) as NonNullable<ReturnType<typeof deliveries.get>>;
    const u2 = new Set(ids(view.u2));
    driver.client(siteOf(h)).acceptShares({ ...delivery, survivors: [...u2], shares: delivery.shares.filter((share) => u2.has(share.sender)) });
    uploads.set(h, driver.client(siteOf(h)).maskedInput(testUpdate(config, siteOf(h))));
  }
  const digestOf = (view: View): Uint8Array => survivorDigest(ids(view.u2));
  const colluderClosing = (c: number, view: View): MaskedInputClosing => {
    const uploadHash = sha256(Uint8Array.of(c));
    return { siteId: siteOf(c), survivorDigest: digestOf(view), uploadHash, signature: signMessage(key(c), maskedInputTranscript(context, listHash, digestOf(view), uploadHash)) };
  };

  // ConsistencyCheck: U3 with the closings of its members (colluders' closings carry the site's H(U2)).
  const consistency = new Map<number, Uint8Array>();
  for (const [h, view] of attack.views) {
    const closings = indices(view.u3).map((m) => {
      if (has(attack.colluders, m)) return colluderClosing(m, view);
      const upload = uploads.get(m) as MaskedInputMessage;
      return { siteId: siteOf(m), survivorDigest: upload.survivorDigest, uploadHash: upload.uploadHash, signature: upload.signature };
    });
    consistency.set(h, driver.client(siteOf(h)).consistencyCheck({ stage: 'consistency_request', roundId: config.roundId, survivors: ids(view.u3), closings }).signature);
  }

  // Unmask with the signatures the attack forwards to each site.
  const decisions = new Map<number, Revealed | undefined>();
  const responses = new Map<number, UnmaskResponseMessage>();
  for (const [h, view] of attack.views) {
    const forwarded = (attack.forwarded.get(h) ?? model.all) & ~bit(h);
    const signatures = indices(forwarded).map((s) => ({
      siteId: siteOf(s),
      signature: has(attack.colluders, s) ? signMessage(key(s), consistencyTranscript(context, listHash, digestOf(view), ids(view.u3))) : (consistency.get(s) as Uint8Array),
    }));
    try {
      const response = driver.client(siteOf(h)).unmask({ stage: 'unmask_request', roundId: config.roundId, signatures });
      responses.set(h, response);
      decisions.set(h, {
        selfMask: response.shares.filter((s) => s.secret === 'self_mask').reduce((mask, s) => mask | bit(indexOf(s.dealer)), 0),
        maskKey: response.shares.filter((s) => s.secret === 'mask_key').reduce((mask, s) => mask | bit(indexOf(s.dealer)), 0),
      });
    } catch (error) {
      if (!(error instanceof SecAggError)) throw error;
      decisions.set(h, undefined);
    }
  }

  // The adversary's reconstruction: t shares from honest answers and colluders' holdings.
  const t = model.threshold;
  const sharesOf = (dealer: number, secret: 'self_mask' | 'mask_key'): Share[] => [
    ...[...responses.values()].flatMap((response) => response.shares.filter((s) => s.dealer === siteOf(dealer) && s.secret === secret).map((s) => decodeShare(s.share, SECRET_LENGTH))),
    ...[...colluders.values()].flatMap(({ held }) => {
      const pair = held.get(siteOf(dealer));
      return pair === undefined ? [] : [secret === 'self_mask' ? pair.selfMask : pair.maskKey];
    }),
  ];
  const maskKeyOf = (index: number): Uint8Array | undefined => {
    const colluder = colluders.get(index);
    if (colluder !== undefined) return colluder.maskSecretKey;
    const shares = sharesOf(index, 'mask_key');
    return shares.length >= t ? combineShares(shares, t, SECRET_LENGTH) : undefined;
  };
  const maskPublicKey = (index: number): Uint8Array => sentOf<AdvertiseKeysMessage>(siteOf(index), 'advertise_keys').maskPublicKey;
  const u = attack.target;
  const selfMask = combineShares(sharesOf(u, 'self_mask'), t, SECRET_LENGTH);
  if (!bytesMatch(sha256(selfMask), sentOf<ShareKeysMessage>(siteOf(u), 'share_keys').selfMaskCommitment)) throw new Error('b_u does not match H(b_u)');
  const streams: MaskStream[] = [{ seed: selfMask, sign: -1 }];
  const ownMaskKey = maskKeyOf(u);
  for (const v of indices((model.open[u] as number) & (attack.views.get(u) as View).u2)) {
    const vKey = ownMaskKey === undefined ? maskKeyOf(v) : undefined;
    const [secretKey, publicKey] = ownMaskKey !== undefined ? [ownMaskKey, maskPublicKey(v)] : [vKey, maskPublicKey(u)];
    if (secretKey === undefined) throw new Error(`s_uv for neighbour ${v} is not known`);
    if (!bytesMatch(x25519PublicKey(secretKey), ownMaskKey !== undefined ? maskPublicKey(u) : maskPublicKey(v))) throw new Error('a reconstructed s_sk does not match its s_pk');
    streams.push({ seed: deriveMaskSeed(secretKey, publicKey, config.roundId, siteOf(u), siteOf(v)), sign: pairwiseMaskSign(siteOf(u), siteOf(v)) === 1 ? -1 : 1 });
  }
  const recovered = new Uint32Array((uploads.get(u) as MaskedInputMessage).maskedVector);
  addMasks(recovered, streams);
  for (const client of driver.clients.values()) client.dispose();
  return { decisions, recovered, expected: quantizedVector(config, siteOf(u), testUpdate(config, siteOf(u))) };
}

function bytesMatch(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
