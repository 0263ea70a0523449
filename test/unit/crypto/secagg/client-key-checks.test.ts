/**
 * A site's checks of the key list L and of the graph message (client-keys.ts), each given the one
 * forgery it exists to catch. Honest stages run with the simulation harness; then exactly one field of
 * what one site (the victim) receives is changed, and the victim must refuse with that check's reason,
 * saying what was wrong, and send nothing more: no signature over a forged H(L), no nonce, no shares.
 * Where a check is backed up by a later one in an honest round (a neighbour's advert and H(L) are signed
 * over the same context), the forgery gives every other check what it wants, so only that check can tell.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { signMessage } from '../../../../crypto/signature.js';
import { SecAggClient } from '../../../../crypto/secagg/client.js';
import { roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import type { RoundConfig } from '../../../../crypto/secagg/config.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { AdvertiseKeysMessage, GraphMessage, KeyListEntry, KeyListMessage, NonceRevealMessage } from '../../../../crypto/secagg/messages.js';
import { advertiseTranscript, keyListHash, keyListTranscript, roundContext, type RoundContext } from '../../../../crypto/secagg/transcript.js';
import {
  RoundDriver,
  cachedFederation,
  stagesSent,
  testPolicy,
  testRoundConfig,
  uncheckedGraphMessage,
  uncheckedKeyList,
  type TestFederation,
} from '../../../support/secagg-sim.js';

let federation: TestFederation;
const ids = (): string[] => federation.sites.map((site) => site.siteId);
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'kc-');
}, 300_000);

/** k = 4 ring over 8 sites, t = 3. */
function roundConfig(): RoundConfig {
  return testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 64 });
}

function driver(policy: { site: string; minParticipants: number } | undefined = undefined): RoundDriver {
  return new RoundDriver({
    federation,
    config: roundConfig(),
    ...(policy === undefined ? {} : { policy: (siteId: string) => testPolicy(siteId === policy.site ? { minParticipants: policy.minParticipants } : {}) }),
  });
}

function refusalOf(action: () => unknown): SecAggError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(SecAggError);
    return error as SecAggError;
  }
  throw new Error('expected the site to refuse the forged message');
}

describe('a key list L the site must not sign (acceptKeyList)', () => {
  const victim = 'kc-01';

  /** Shows the victim `forge(L)` and returns its refusal, after checking it sent nothing more. */
  function refusedList(forge: (entries: KeyListEntry[]) => unknown, round = driver()): SecAggError {
    const keyList = round.advertise();
    const forged = { ...keyList, entries: forge([...keyList.entries]) } as KeyListMessage;
    const error = refusalOf(() => round.client(victim).revealNonce(forged));
    expect(error.stage).toBe('key_list');
    expect(stagesSent(round.sent.get(victim))).toEqual(['advertise_keys']);
    expect(round.client(victim).phase).toBe('failed');
    return error;
  }

  it('is refused when entries is not an array', () => {
    const error = refusedList(() => ({ length: 8 }));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE' });
    expect(error.message).toContain('key_list.entries must be an array');
  });

  it('is refused when it lists a site outside U (appended in id order)', () => {
    const error = refusedList((entries) => {
      const last = entries[entries.length - 1] as KeyListEntry;
      return [...entries, { ...last, siteId: 'kc-99' }];
    });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'KEY_LIST_INVALID' });
    expect(error.message).toContain('key_list.entries[8].siteId "kc-99" is not a member of U');
  });

  it.each([
    ['null', null],
    ['a number for the site id', { siteId: 7 }],
  ])('is refused when an entry is %s', (_name, bad) => {
    const error = refusedList((entries) => [bad, ...entries]);
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'KEY_LIST_INVALID' });
    expect(error.message).toContain('key_list.entries[0].siteId');
    expect(error.message).toContain('is not a member of U');
  });

  it('is refused when two entries are out of id order', () => {
    const error = refusedList((entries) => {
      const [first, second, ...rest] = entries;
      return [second, first, ...rest];
    });
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'KEY_LIST_INVALID' });
    expect(error.message).toContain('key_list.entries must be distinct and in site id order; "kc-00" follows "kc-01"');
  });

  it('is refused when an entry is listed twice', () => {
    const error = refusedList((entries) => [...entries.slice(0, 4), entries[3] as KeyListEntry, ...entries.slice(4)]);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'KEY_LIST_INVALID' });
    expect(error.message).toContain('"kc-03" follows "kc-03"');
  });

  // Another site's entry, so the site's own-entry comparison is not what catches it.
  it.each([
    ['a 31-byte advertDigest', (entry: KeyListEntry) => ({ ...entry, advertDigest: entry.advertDigest.subarray(0, 31) })],
    ['an advertDigest that is not bytes', (entry: KeyListEntry) => ({ ...entry, advertDigest: [...entry.advertDigest] })],
    ['a 33-byte nonceCommitment', (entry: KeyListEntry) => ({ ...entry, nonceCommitment: new Uint8Array(33) })],
    ['no nonceCommitment', (entry: KeyListEntry) => ({ siteId: entry.siteId, advertDigest: entry.advertDigest })],
  ])("is refused when another site's entry has %s", (_name, forge) => {
    const error = refusedList((entries) => entries.map((entry) => (entry.siteId === 'kc-05' ? forge(entry) : entry)));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'KEY_LIST_INVALID' });
    expect(error.message).toContain('key_list.entries[5] must carry 32-byte advertDigest and nonceCommitment');
  });

  it("names the check when the site's own entry is altered", () => {
    const error = refusedList((entries) => entries.map((entry) => (entry.siteId === victim ? { ...entry, nonceCommitment: sha256(entry.nonceCommitment) } : entry)));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'OWN_ENTRY_MISMATCH' });
    expect(error.message).toContain("key_list does not carry this site's advert and nonce commitment as it sent them");
  });

  it.each([
    ['left out', (entries: KeyListEntry[]) => entries.filter((entry) => entry.siteId !== victim)],
    ['given another advert digest', (entries: KeyListEntry[]) => entries.map((entry) => (entry.siteId === victim ? { ...entry, advertDigest: sha256(entry.advertDigest) } : entry))],
  ])("names the check when the site's own entry is %s", (_name, forge) => {
    const error = refusedList(forge);
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'OWN_ENTRY_MISMATCH' });
  });

  it("is refused when |U1| is below the site's minimum", () => {
    // Only the site and one other: a coordinator isolating it in a list of two.
    const error = refusedList((entries) => entries.filter((entry) => entry.siteId === victim || entry.siteId === 'kc-02'));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'TOO_FEW_SURVIVORS' });
    expect(error.message).toContain("|U1| = 2 is below this site's minimum of 3");
  });

  it('is refused when U1 is too small for t share holders, even within the site minimum', () => {
    const round = driver({ site: victim, minParticipants: 2 });
    const error = refusedList((entries) => entries.filter((entry) => entry.siteId === victim || entry.siteId === 'kc-02'), round);
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'INSUFFICIENT_SHARE_HOLDERS' });
    expect(error.message).toContain('closed neighbourhoods of 2 sites cannot hold t = 3 shares');
  });
});

describe('a graph message the site must not deal shares on (verifyGraph)', () => {
  const victim = 'kc-02';

  function roundAtGraph(): { round: RoundDriver; genuine: GraphMessage } {
    const round = driver();
    const graphs = round.revealNonces(round.advertise());
    const genuine = graphs.get(victim);
    if (genuine === undefined) throw new Error('no graph message for the victim');
    return { round, genuine };
  }

  function refusedGraph(round: RoundDriver, forged: unknown): SecAggError {
    const error = refusalOf(() => round.client(victim).shareKeys(forged as GraphMessage, round.now));
    expect(error.stage).toBe('graph');
    expect(stagesSent(round.sent.get(victim))).toEqual(['advertise_keys', 'nonce_reveal']);
    expect(round.client(victim).phase).toBe('failed');
    return error;
  }

  it.each(['nonces', 'neighbours', 'revokedSerials'])('is refused without a %s array', (field) => {
    const { round, genuine } = roundAtGraph();
    const error = refusedGraph(round, { ...genuine, [field]: undefined });
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE' });
    expect(error.message).toContain('graph message must carry nonces, neighbours and revokedSerials arrays');
  });

  it('is refused with a nonce for a site outside U1', () => {
    const { round, genuine } = roundAtGraph();
    const error = refusedGraph(round, { ...genuine, nonces: [...genuine.nonces, { siteId: 'kc-99', nonce: new Uint8Array(32) }] });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'NONCE_UNEXPECTED' });
    expect(error.message).toContain('graph.nonces holds a nonce for "kc-99", which is not a (single) member of U1');
  });

  it('is refused with a nonce given twice', () => {
    const { round, genuine } = roundAtGraph();
    const again = genuine.nonces.find((entry) => entry.siteId === 'kc-06');
    const error = refusedGraph(round, { ...genuine, nonces: [...genuine.nonces, again] });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'NONCE_UNEXPECTED' });
    expect(error.message).toContain('"kc-06"');
  });

  it('is refused with a nonce that does not open its commitment in L (a ground seed)', () => {
    const { round, genuine } = roundAtGraph();
    const nonces = genuine.nonces.map((entry) => (entry.siteId === 'kc-06' ? { ...entry, nonce: new Uint8Array(randomBytes(entry.nonce.length)) } : entry));
    const error = refusedGraph(round, { ...genuine, nonces });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'NONCE_MISMATCH' });
    expect(error.message).toContain('the nonce of "kc-06" does not match its commitment H(r_v) in L');
  });

  it.each([
    ['as a plain array of its bytes', (nonce: Uint8Array) => [...nonce]],
    ['as text', (nonce: Uint8Array) => Buffer.from(nonce).toString('hex')],
  ])('is refused with a nonce given %s, naming the check', (_name, respell) => {
    const { round, genuine } = roundAtGraph();
    const nonces = genuine.nonces.map((entry) => (entry.siteId === 'kc-06' ? { ...entry, nonce: respell(entry.nonce) } : entry));
    const error = refusedGraph(round, { ...genuine, nonces });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'NONCE_MISMATCH' });
  });

  it("is refused with a U1 member's nonce withheld", () => {
    const { round, genuine } = roundAtGraph();
    const error = refusedGraph(round, { ...genuine, nonces: genuine.nonces.filter((entry) => entry.siteId !== 'kc-06') });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'NONCE_WITHHELD' });
    expect(error.message).toContain('the nonce of U1 member "kc-06" is missing');
  });

  it('is refused when the neighbour list leaves out a neighbour', () => {
    const { round, genuine } = roundAtGraph();
    const error = refusedGraph(round, { ...genuine, neighbours: genuine.neighbours.slice(1) });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'GRAPH_MISMATCH' });
    expect(error.message).toContain("graph.neighbours lists 3 sites that are not this site's 4 neighbours");
  });

  it('is refused when the neighbour list adds a genuine site that is not a neighbour', () => {
    const { round, genuine } = roundAtGraph();
    const listed = new Set([victim, ...genuine.neighbours.map((record) => record.siteId)]);
    const outsider = ids().find((siteId) => !listed.has(siteId)) as string;
    const sent = round.sent.get(outsider) ?? [];
    const advert = sent.find((message) => message.stage === 'advertise_keys') as AdvertiseKeysMessage;
    const reveal = sent.find((message) => message.stage === 'nonce_reveal') as NonceRevealMessage;
    const record = { siteId: outsider, advert, keyListSignature: reveal.keyListSignature, certificate: federation.site(outsider).certificatePem };
    const error = refusedGraph(round, { ...genuine, neighbours: [...genuine.neighbours, record] });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'GRAPH_MISMATCH' });
    expect(error.message).toContain("graph.neighbours lists 5 sites that are not this site's 4 neighbours");
  });

  it("is refused when the coordinator revokes a neighbour's certificate", () => {
    const { round, genuine } = roundAtGraph();
    const neighbour = genuine.neighbours[0]?.siteId as string;
    const error = refusedGraph(round, { ...genuine, revokedSerials: [federation.site(neighbour).serial] });
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CERTIFICATE_REVOKED', stage: 'graph', site: victim });
    expect(error.message).toContain(`the certificate of neighbour ${JSON.stringify(neighbour)} was rejected`);
    expect(error.cause).toBeDefined();
  });

  it("is refused when a neighbour record carries another site's certificate", () => {
    const { round, genuine } = roundAtGraph();
    const [first, second] = genuine.neighbours;
    if (first === undefined || second === undefined) throw new Error('the victim has fewer than two neighbours');
    const neighbours = genuine.neighbours.map((record) => (record.siteId === first.siteId ? { ...record, certificate: second.certificate } : record));
    const error = refusedGraph(round, { ...genuine, neighbours });
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CERTIFICATE_IDENTITY' });
    expect(error.message).toContain(`the certificate of neighbour ${JSON.stringify(first.siteId)} was rejected`);
  });

  type AdvertForgery = (advert: AdvertiseKeysMessage) => unknown;
  const malformed: readonly [string, AdvertForgery | 'keyListSignature'][] = [
    ['an advert of another stage', (advert) => ({ ...advert, stage: 'nonce_reveal' })],
    ['no advert', () => undefined],
    ['a cipher key that is not bytes', (advert) => ({ ...advert, cipherPublicKey: [...advert.cipherPublicKey] })],
    ['a 31-byte cipher key', (advert) => ({ ...advert, cipherPublicKey: advert.cipherPublicKey.subarray(0, 31) })],
    ['a mask key that is not bytes', (advert) => ({ ...advert, maskPublicKey: [...advert.maskPublicKey] })],
    ['a 31-byte mask key', (advert) => ({ ...advert, maskPublicKey: advert.maskPublicKey.subarray(0, 31) })],
    ['a signature that is not bytes', (advert) => ({ ...advert, signature: [...advert.signature] })],
    ['an H(L) signature that is not bytes', 'keyListSignature'],
  ];

  it.each(malformed)('is refused when a neighbour record has %s', (_name, forge) => {
    const { round, genuine } = roundAtGraph();
    const target = genuine.neighbours[1]?.siteId as string;
    const neighbours = genuine.neighbours.map((record) => {
      if (record.siteId !== target) return record;
      return forge === 'keyListSignature' ? { ...record, keyListSignature: [...record.keyListSignature] } : { ...record, advert: forge(record.advert) };
    });
    const error = refusedGraph(round, { ...genuine, neighbours });
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE' });
    expect(error.message).toContain(`the advert of neighbour ${JSON.stringify(target)} is malformed`);
  });

  it("is refused when a neighbour's H(L) signature is over another L", () => {
    const { round, genuine } = roundAtGraph();
    const target = genuine.neighbours[2]?.siteId as string;
    const otherList = sha256(utf8('another key list'));
    const keyListSignature = signMessage(federation.site(target).privateKey, keyListTranscript(roundContext(round.config), otherList));
    const neighbours = genuine.neighbours.map((record) => (record.siteId === target ? { ...record, keyListSignature } : record));
    const error = refusedGraph(round, { ...genuine, neighbours });
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'NEIGHBOUR_SIGNATURE_INVALID' });
    expect(error.message).toContain(`neighbour ${JSON.stringify(target)} did not sign this site's H(L)`);
  });
});

/**
 * A neighbour whose advert is in L and whose H(L) signature is genuine, but whose advert itself must be
 * refused. An honest neighbour signs its advert and H(L) over the same context, so these adverts come
 * from a neighbour whose signing key is used against the protocol (the liar, colluding with the
 * coordinator, or a site shown another RoundConfig when it advertised): the coordinator checks nothing
 * here (uncheckedKeyList), and the liar signs the H(L) of the L that holds its forged advert.
 */
describe('a neighbour advert that must be refused on its own', () => {
  const liar = 'kc-05';

  function refusalOfVictim(forge: (advert: AdvertiseKeysMessage, context: RoundContext) => AdvertiseKeysMessage): { error: SecAggError; victim: string } {
    const config = roundConfig();
    const context = roundContext(config);
    const liarKey = federation.site(liar).privateKey;
    const clients = new Map(ids().map((siteId) => [siteId, new SecAggClient({ siteId, signingKey: federation.site(siteId).privateKey, policy: testPolicy(), trust: federation.trust })]));
    const client = (siteId: string): SecAggClient => clients.get(siteId) as SecAggClient;
    const genuineAdverts = new Map<string, AdvertiseKeysMessage>(ids().map((siteId) => [siteId, client(siteId).advertiseKeys(config)]));
    const adverts = new Map([...genuineAdverts, [liar, forge(genuineAdverts.get(liar) as AdvertiseKeysMessage, context)]]);
    const keyList = uncheckedKeyList(config.roundId, adverts);
    const reveals = new Map<string, NonceRevealMessage>();
    for (const siteId of ids()) if (siteId !== liar) reveals.set(siteId, client(siteId).revealNonce(keyList));
    // The liar's nonce is its genuine one (its advert kept the nonce commitment); its H(L) signature is over the forged L.
    const liarReveal = client(liar).revealNonce(uncheckedKeyList(config.roundId, genuineAdverts));
    reveals.set(liar, { ...liarReveal, keyListSignature: signMessage(liarKey, keyListTranscript(context, keyListHash(keyList.entries))) });
    const base = { federation, roundId: config.roundId, roundConfigHash: roundConfigHash(config), degree: 4, keyList, adverts, reveals };
    const victim = uncheckedGraphMessage(liar, base).neighbours[0]?.siteId as string;
    const error = refusalOf(() => client(victim).shareKeys(uncheckedGraphMessage(victim, base), new Date()));
    expect(client(victim).phase).toBe('failed');
    return { error, victim };
  }

  it('is refused when its advert signature is over another RoundConfig', () => {
    const { error } = refusalOfVictim((advert, context) => {
      const elsewhere = { ...context, roundConfigHash: sha256(utf8('a RoundConfig only the liar was shown')) };
      return { ...advert, signature: signMessage(federation.site(liar).privateKey, advertiseTranscript(elsewhere, advert.cipherPublicKey, advert.maskPublicKey, advert.nonceCommitment)) };
    });
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'NEIGHBOUR_SIGNATURE_INVALID', stage: 'graph' });
    expect(error.message).toContain(`the advert signature of neighbour "${liar}" does not verify over this site's H(RoundConfig)`);
  });

  it('is refused when its advert signature is random bytes', () => {
    const { error } = refusalOfVictim((advert) => ({ ...advert, signature: new Uint8Array(randomBytes(advert.signature.length)) }));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'NEIGHBOUR_SIGNATURE_INVALID' });
  });

  it('is refused when it advertises the same key for c and s', () => {
    const { error } = refusalOfVictim((advert, context) => ({
      ...advert,
      maskPublicKey: advert.cipherPublicKey,
      signature: signMessage(federation.site(liar).privateKey, advertiseTranscript(context, advert.cipherPublicKey, advert.cipherPublicKey, advert.nonceCommitment)),
    }));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'ADVERT_MISMATCH', stage: 'graph' });
    expect(error.message).toContain(`neighbour "${liar}" advertised the same key for c and s`);
  });
});
