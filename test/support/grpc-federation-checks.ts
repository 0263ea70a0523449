/**
 * Independent checks of what a federation produced, computed from first principles rather than through
 * the coordinator's own code paths:
 * - plaintext FedAvg of the sites' local updates (McMahan et al. 2017, with DESIGN.md step 4's weight
 *   w = min(examples, W) / W and clip bound c) and the per-coordinate bound the fixed-point encoding
 *   allows: each site's slot is off by less than one quantisation step c / M, M = floor((2^31 - 1) / |U|);
 * - offline verification of a ledger record (DESIGN.md step 7): the signed bytes rebuilt with
 *   crypto/signature.ts canonicalMessage from the record's own fields, each signature checked with
 *   verifyMessage against the signer's certificate (issued by the CA, CN = signer, valid at commit
 *   time), and the quorum rule (more than half of U3 and at least t) applied to the valid signers.
 */
import { X509Certificate } from 'node:crypto';
import { fromHex } from '../../crypto/bytes.js';
import { decodeRoundConfig, roundConfigHash } from '../../crypto/secagg/config-codec.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import { encodeSiteIdSet } from '../../crypto/secagg/fields.js';
import { commitTranscript, keyListHash, roundContext } from '../../crypto/secagg/transcript.js';
import { canonicalMessage, verifyMessage } from '../../crypto/signature.js';
import type { CommitBody } from '../../crypto/secagg/commit-record-codec.js';
import { GENESIS_HASH, recordHash, type LedgerRecord } from '../../coordinator/state/ledger.js';
import type { TrainingPlan } from '../../model/plan.js';
import { decodeWeights } from '../../model/weight-codec.js';
import { sha256 } from '../../proto/chunking.js';
import type { GrpcFederation } from './grpc-federation.js';

export interface SiteUpdate {
  readonly delta: Float32Array;
  readonly trainingExamples: number;
}

export interface FedAvgReference {
  /** previous + sum(w * clip(delta)) / sum(w), in float64. */
  readonly model: Float64Array;
  /** Per coordinate: how far the securely aggregated model may be from `model`. */
  readonly tolerance: Float64Array;
  /** Largest |w * delta| over all sites and coordinates (above c means the protocol clipped). */
  readonly largestWeightedDelta: number;
  readonly weightSum: number;
}

/**
 * `participants` is |U| (it fixes M); `updates` are the sites whose inputs were summed (U3).
 * Tolerance per coordinate: the weighted-delta sum is off by less than |U3| c / M and the weight sum
 * by less than |U3| / M; to first order the mean is then off by at most
 * (|U3| c / M + |mean| |U3| / M) / (sum(w) - |U3| / M). The result is stored as float32, which adds
 * half an ulp of the value; 2^-23 |x| covers that with room for the reference's own rounding.
 */
export function fedAvgReference(previous: Float32Array, updates: readonly SiteUpdate[], participants: number, maxWeight: number, clipBound: number): FedAvgReference {
  const scale = Math.floor((2 ** 31 - 1) / participants);
  const weights = updates.map((update) => Math.min(update.trainingExamples, maxWeight) / maxWeight);
  const weightSum = weights.reduce((sum, weight) => sum + weight, 0);
  const sums = new Float64Array(previous.length);
  let largestWeightedDelta = 0;
  updates.forEach((update, site) => {
    const weight = weights[site] as number;
    for (let i = 0; i < previous.length; i++) {
      const weighted = weight * (update.delta[i] as number);
      largestWeightedDelta = Math.max(largestWeightedDelta, Math.abs(weighted));
      sums[i] = (sums[i] as number) + Math.min(clipBound, Math.max(-clipBound, weighted));
    }
  });
  const sumError = (updates.length * clipBound) / scale;
  const weightError = updates.length / scale;
  const model = new Float64Array(previous.length);
  const tolerance = new Float64Array(previous.length);
  for (let i = 0; i < previous.length; i++) {
    const mean = (sums[i] as number) / weightSum;
    model[i] = (previous[i] as number) + mean;
    tolerance[i] = (sumError + Math.abs(mean) * weightError) / (weightSum - weightError) + Math.abs(model[i] as number) * 2 ** -23;
  }
  return { model, tolerance, largestWeightedDelta, weightSum };
}

/** Coordinates where `actual` is outside the reference's tolerance (empty when it agrees). */
export function outsideTolerance(actual: Float32Array, reference: FedAvgReference): { index: number; actual: number; expected: number; tolerance: number }[] {
  const problems: { index: number; actual: number; expected: number; tolerance: number }[] = [];
  for (let i = 0; i < actual.length; i++) {
    const expected = reference.model[i] as number;
    const tolerance = reference.tolerance[i] as number;
    if (!(Math.abs((actual[i] as number) - expected) <= tolerance)) problems.push({ index: i, actual: actual[i] as number, expected, tolerance });
  }
  return problems;
}

export interface FedAvgComparison {
  /** Coordinates of the committed model outside the bound of plaintext FedAvg over U3 (none expected). */
  readonly outside: ReturnType<typeof outsideTolerance>;
  /** Coordinates outside the bound of FedAvg that leaves out U3's first member: shows the bound is tight. */
  readonly outsideWithoutFirst: number;
  readonly largestWeightedDelta: number;
  readonly parameters: number;
}

/**
 * Compares the model a ledger record committed with plaintext FedAvg of the local updates its survivors
 * (U3) reported for that round, starting from the model the record names as previous. Both models are
 * read from the coordinator's store and checked against their hashes first.
 */
export async function compareWithFedAvg(
  federation: GrpcFederation,
  record: LedgerRecord<CommitBody>,
  plan: TrainingPlan,
  options: { readonly participants: number; readonly maxWeight: number; readonly clipBound: number },
): Promise<FedAvgComparison> {
  const model = async (hash: string): Promise<Float32Array> => {
    const bytes = await federation.coordinator.federation.blobs.get(hash);
    if (sha256(bytes).toString('hex') !== hash) throw new Error(`stored model ${hash} does not hash to its name`);
    return decodeWeights(plan, bytes);
  };
  const roundId = Buffer.from(decodeRoundConfig(new Uint8Array(Buffer.from(record.body.roundConfig, 'base64'))).roundId).toString('hex');
  const updates = record.body.survivors.map((siteId) => federation.localUpdate(siteId, roundId));
  const previous = await model(record.body.previousModelHash);
  const committed = await model(record.body.newModelHash);
  const reference = fedAvgReference(previous, updates, options.participants, options.maxWeight, options.clipBound);
  const withoutFirst = fedAvgReference(previous, updates.slice(1), options.participants, options.maxWeight, options.clipBound);
  return {
    outside: outsideTolerance(committed, reference),
    outsideWithoutFirst: outsideTolerance(committed, withoutFirst).length,
    largestWeightedDelta: reference.largestWeightedDelta,
    parameters: previous.length,
  };
}

export interface CommitVerification {
  readonly config: RoundConfig;
  readonly survivors: readonly string[];
  /** Distinct members of U3 whose signature verified against a valid certificate of theirs. */
  readonly validSigners: readonly string[];
  readonly invalid: readonly { readonly siteId: string; readonly why: string }[];
  /** max(floor(|U3| / 2) + 1, t). */
  readonly required: number;
  readonly quorum: boolean;
}

/** Verifies one ledger record's commit signatures offline with the CA certificate only. */
export function verifyCommitRecord(record: LedgerRecord<CommitBody>, caPem: string): CommitVerification {
  const body = record.body;
  const configBytes = new Uint8Array(Buffer.from(body.roundConfig, 'base64'));
  const config = decodeRoundConfig(configBytes);
  const configHash = roundConfigHash(config);
  if (Buffer.from(configHash).toString('hex') !== body.roundConfigHash) throw new Error(`record ${record.sequence}: roundConfigHash does not match the stored RoundConfig`);
  const entries = body.keyList.map((entry) => ({ siteId: entry.siteId, advertDigest: fromHex(entry.advertDigest), nonceCommitment: fromHex(entry.nonceCommitment) }));
  const listHash = keyListHash(entries);
  if (Buffer.from(listHash).toString('hex') !== body.keyListHash) throw new Error(`record ${record.sequence}: keyListHash does not match the stored key list L`);
  // DESIGN.md step 7: (H(L), previous model hash, aggregate hash, new model hash, optimiser state hash, sorted U3).
  const signed = canonicalMessage('commit', config.federationId, config.roundId, configHash, [
    listHash,
    fromHex(body.previousModelHash),
    fromHex(body.aggregateHash),
    fromHex(body.newModelHash),
    fromHex(body.optimizerStateHash),
    encodeSiteIdSet(body.survivors),
  ]);
  const hashes = {
    previousModelHash: fromHex(body.previousModelHash),
    aggregateHash: fromHex(body.aggregateHash),
    newModelHash: fromHex(body.newModelHash),
    optimizerStateHash: fromHex(body.optimizerStateHash),
  };
  if (!Buffer.from(signed).equals(commitTranscript(roundContext(config), listHash, hashes, body.survivors))) {
    throw new Error(`record ${record.sequence}: crypto/secagg/transcript.ts commitTranscript differs from the commit layout of DESIGN.md step 7`);
  }
  const ca = new X509Certificate(caPem);
  const committedAt = new Date(body.committedAt);
  const validSigners = new Set<string>();
  const invalid: { siteId: string; why: string }[] = [];
  for (const entry of body.signatures) {
    const certificate = new X509Certificate(entry.certificate);
    const commonName = /^CN=(.*)$/m.exec(certificate.subject)?.[1];
    const why = !body.survivors.includes(entry.siteId)
      ? 'not a member of U3'
      : validSigners.has(entry.siteId)
        ? 'a second signature of the same site'
        : !certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)
          ? 'certificate not issued by the federation CA'
          : commonName !== entry.siteId
            ? `certificate belongs to ${String(commonName)}`
            : committedAt < new Date(certificate.validFrom) || committedAt > new Date(certificate.validTo)
              ? 'certificate not valid at commit time'
              : !verifyMessage(certificate.publicKey, signed, new Uint8Array(Buffer.from(entry.signature, 'base64')))
                ? 'signature does not verify'
                : undefined;
    if (why === undefined) validSigners.add(entry.siteId);
    else invalid.push({ siteId: entry.siteId, why });
  }
  const required = Math.max(Math.floor(body.survivors.length / 2) + 1, config.reconstructionThreshold);
  return { config, survivors: body.survivors, validSigners: [...validSigners], invalid, required, quorum: validSigners.size >= required };
}

/** Problems with the ledger's hash chain and model chain (empty when sound). */
export function ledgerChainProblems(records: readonly LedgerRecord<CommitBody>[]): string[] {
  const problems: string[] = [];
  let previousRecord = GENESIS_HASH;
  let previousModel: string | undefined;
  records.forEach((record, index) => {
    if (record.sequence !== index + 1) problems.push(`record ${index + 1} has sequence ${record.sequence}`);
    if (record.previousRecordHash !== previousRecord) problems.push(`record ${record.sequence} does not link to its predecessor`);
    if (recordHash(record.sequence, record.previousRecordHash, record.body) !== record.recordHash) problems.push(`record ${record.sequence} hash does not match its content`);
    if (previousModel !== undefined && record.body.previousModelHash !== previousModel) problems.push(`record ${record.sequence} does not start from the model record ${record.sequence - 1} committed`);
    const config = decodeRoundConfig(new Uint8Array(Buffer.from(record.body.roundConfig, 'base64')));
    if (Buffer.from(config.modelHash).toString('hex') !== record.body.previousModelHash) problems.push(`record ${record.sequence}: the RoundConfig names another model than previousModelHash`);
    previousRecord = record.recordHash;
    previousModel = record.body.newModelHash;
  });
  return problems;
}
