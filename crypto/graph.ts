/**
 * The SecAgg+ communication graph (Bell et al., CCS 2020, section 3: a random k-regular graph replaces
 * the complete graph of Bonawitz et al., CCS 2017), with the commit-reveal seed of DESIGN.md step 2.
 *
 * The seed is SHA-256(H(RoundConfig) || H(L) || r_u for every u in U1, in id order). Every r_u was
 * committed to in L before any was revealed, so no single party - neither the coordinator nor a site
 * colluding with it - can choose the graph by choosing its nonce last. Sites are placed on a ring in the
 * order of HMAC-SHA256(seed, site id), and each is linked to its k/2 nearest on either side; when
 * k >= |U1| - 1 every site is linked to every other one (the complete graph, classic SecAgg).
 *
 * Pure and deterministic: every party that knows the seed, the members and k derives the same graph.
 */
import { assertBytes, compareBytes, utf8 } from './bytes.js';
import { CryptoError, invalidArgument } from './errors.js';
import { SHA256_LENGTH, hmacSha256, sha256 } from './hash.js';

/** Length of each site's graph nonce r_u in bytes (DESIGN.md step 2). */
export const GRAPH_NONCE_LENGTH = 32;

/** Sorts site ids by the bytes of their UTF-8 form, the one order used wherever ids are listed. */
export function sortSiteIds(siteIds: Iterable<string>): string[] {
  return [...siteIds].sort(compareSiteIds);
}

/** Comparator of site ids by their UTF-8 bytes (not by UTF-16 code units, which order differently). */
export function compareSiteIds(a: string, b: string): number {
  return compareBytes(utf8(a), utf8(b));
}

/**
 * Seed of the neighbour graph: SHA-256(roundConfigHash || keyListHash || r_u for u in `siteIds` in id
 * order). Every member of `siteIds` (U1) must have revealed its nonce: a missing one is a
 * FAILED_PRECONDITION 'GRAPH_NONCE_MISSING' (the round aborts; DESIGN.md step 2), and nonces of sites
 * outside U1 are refused, because accepting them would let their holder influence the graph.
 */
export function graphSeed(
  roundConfigHash: Uint8Array,
  keyListHash: Uint8Array,
  nonces: ReadonlyMap<string, Uint8Array>,
  siteIds: readonly string[],
): Uint8Array {
  assertBytes(roundConfigHash, 'roundConfigHash', SHA256_LENGTH);
  assertBytes(keyListHash, 'keyListHash', SHA256_LENGTH);
  const ordered = orderedDistinctIds(siteIds);
  const parts: Uint8Array[] = [roundConfigHash, keyListHash];
  for (const siteId of ordered) {
    const nonce = nonces.get(siteId);
    if (nonce === undefined) {
      throw new CryptoError(
        'FAILED_PRECONDITION',
        'GRAPH_NONCE_MISSING',
        `nonce r_u of site ${JSON.stringify(siteId)} is missing; every member of U1 must reveal its nonce before the graph exists`,
      );
    }
    assertBytes(nonce, `nonce of site ${JSON.stringify(siteId)}`, GRAPH_NONCE_LENGTH);
    parts.push(nonce);
  }
  for (const siteId of nonces.keys()) {
    if (!ordered.includes(siteId)) {
      throw invalidArgument('GRAPH_NONCE_UNEXPECTED', `nonce given for site ${JSON.stringify(siteId)}, which is not a member of U1`);
    }
  }
  return sha256(...parts);
}

/** The undirected neighbour graph of one round, identical for every party that derives it. */
export interface NeighbourGraph {
  /** The members (U1) in id order. */
  readonly siteIds: readonly string[];
  /** The members in ring order (by HMAC-SHA256(seed, id)). */
  readonly ring: readonly string[];
  /** The requested degree k. */
  readonly degree: number;
  /** True when k >= |U1| - 1: every site is every other site's neighbour (classic SecAgg). */
  readonly complete: boolean;
  /** Neighbours of `siteId` (never itself), in id order. */
  neighbours(siteId: string): readonly string[];
  /** `siteId` and its neighbours, in id order: the holders of its Shamir shares. */
  closedNeighbourhood(siteId: string): readonly string[];
  isNeighbour(a: string, b: string): boolean;
}

/**
 * Builds the ring graph of DESIGN.md step 2. `degree` (k) must be even unless k >= |siteIds| - 1; a
 * ring position has k/2 neighbours on each side, which are all distinct because k < |U1| - 1 there.
 */
export function buildNeighbourGraph(seed: Uint8Array, siteIds: readonly string[], degree: number): NeighbourGraph {
  assertBytes(seed, 'seed', SHA256_LENGTH);
  const members = orderedDistinctIds(siteIds);
  if (!Number.isInteger(degree) || degree < 0) {
    throw invalidArgument('INVALID_DEGREE', `degree must be a non-negative integer, got ${String(degree)}`);
  }
  const complete = degree >= members.length - 1;
  if (!complete && degree % 2 !== 0) {
    throw invalidArgument(
      'INVALID_DEGREE',
      `degree must be even when it is below |U1| - 1 = ${members.length - 1} (k/2 neighbours on either side), got ${degree}`,
    );
  }
  // Ring position keys: ties between two HMAC outputs are practically impossible, but the id decides
  // them anyway so that the order is a total function of the inputs.
  const keyed = members.map((siteId) => ({ siteId, key: hmacSha256(seed, utf8(siteId)), idBytes: utf8(siteId) }));
  keyed.sort((a, b) => compareBytes(a.key, b.key) || compareBytes(a.idBytes, b.idBytes));
  const ring = keyed.map((entry) => entry.siteId);

  const adjacency = new Map<string, Set<string>>();
  for (const siteId of members) adjacency.set(siteId, new Set());
  const count = ring.length;
  for (let position = 0; position < count; position++) {
    const self = ring[position] as string;
    const linked = adjacency.get(self) as Set<string>;
    if (complete) {
      for (const other of members) if (other !== self) linked.add(other);
      continue;
    }
    for (let step = 1; step <= degree / 2; step++) {
      linked.add(ring[(position + step) % count] as string);
      linked.add(ring[(position - step + count) % count] as string);
    }
  }

  const neighbourLists = new Map<string, readonly string[]>();
  const closedLists = new Map<string, readonly string[]>();
  for (const [siteId, linked] of adjacency) {
    neighbourLists.set(siteId, Object.freeze(sortSiteIds(linked)));
    closedLists.set(siteId, Object.freeze(sortSiteIds([...linked, siteId])));
  }

  const lookup = (lists: Map<string, readonly string[]>, siteId: string): readonly string[] => {
    const list = lists.get(siteId);
    if (list === undefined) {
      throw invalidArgument('UNKNOWN_SITE', `site ${JSON.stringify(siteId)} is not a member of the graph`);
    }
    return list;
  };
  return {
    siteIds: Object.freeze(members),
    ring: Object.freeze(ring),
    degree,
    complete,
    neighbours: (siteId) => lookup(neighbourLists, siteId),
    closedNeighbourhood: (siteId) => lookup(closedLists, siteId),
    isNeighbour: (a, b) => adjacency.get(a)?.has(b) ?? false,
  };
}

function orderedDistinctIds(siteIds: readonly string[]): string[] {
  if (!Array.isArray(siteIds)) {
    throw invalidArgument('INVALID_SITE_IDS', 'siteIds must be an array of site id strings');
  }
  for (const siteId of siteIds) {
    if (typeof siteId !== 'string' || siteId.length === 0) {
      throw invalidArgument('INVALID_SITE_ID', `every site id must be a non-empty string, got ${JSON.stringify(siteId)}`);
    }
  }
  const ordered = sortSiteIds(siteIds);
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i] === ordered[i - 1]) {
      throw invalidArgument('DUPLICATE_SITE_ID', `site id ${JSON.stringify(ordered[i])} appears more than once`);
    }
  }
  return ordered;
}
