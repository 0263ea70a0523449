/**
 * Forging a ledger the way a coordinator that holds (or colludes with) the sites' keys could: rewrite a
 * committed round, recompute H(RoundConfig) and H(L), have the given signers sign the new commit
 * transcript, and re-chain every record hash. What `fedgate verify` must then catch is the one check the
 * forgery breaks - not a broken hash chain, a stale digest or a signature over other bytes.
 *
 * Bodies are encoded with the shared commitBody/parseCommitBody (crypto/secagg/commit-record-codec.ts), so a forged record has exactly
 * the production format; forging with no edit and the original signers gives a ledger that verifies.
 */
import type { KeyObject } from 'node:crypto';
import { readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toHex } from '../../crypto/bytes.js';
import { dequantizeSum } from '../../crypto/quantize.js';
import { roundScale, roundSegments, vectorLength, type RoundConfig } from '../../crypto/secagg/config.js';
import { roundConfigHash } from '../../crypto/secagg/config-codec.js';
import type { CommitRecord, CommitSignatureRecord } from '../../crypto/secagg/server-commit.js';
import { commitTranscript, keyListHash, roundContext } from '../../crypto/secagg/transcript.js';
import { signMessage } from '../../crypto/signature.js';
import { commitBody, parseCommitBody, type CommitBody, type RoundMetrics } from '../../crypto/secagg/commit-record-codec.js';
import type { JsonValue } from '../../coordinator/state/canonical-json.js';
import { GENESIS_HASH, LEDGER_FORMAT_VERSION, readLedgerDirectory, recordHash } from '../../coordinator/state/ledger.js';
import { ModelStore } from '../../coordinator/state/model-store.js';
import { applyServerStep, decodeServerOptimizerState, encodeServerOptimizerState } from '../../model/server-optimizer.js';
import { decodeWeights, encodeWeights, weightsLayout } from '../../model/weight-codec.js';

/** Whoever signs a forged commit: a key and the certificate presented with the signature. */
export interface LedgerSigner {
  readonly siteId: string;
  readonly privateKey: KeyObject;
  readonly certificatePem: string;
}

/** The commit bodies of a state directory's ledger, in sequence order. */
export async function readCommitBodies(stateDirectory: string): Promise<CommitBody[]> {
  const records = await readLedgerDirectory(join(stateDirectory, 'ledger'));
  return records.map((record) => parseCommitBody(record.body, `record ${record.sequence}`).body);
}

/** The CommitRecord a body holds (digests as recorded; the verifier recomputes and compares them). */
export function commitOf(body: CommitBody): CommitRecord {
  return parseCommitBody(body as unknown as JsonValue, 'forged body').record;
}

/** A signature of `signer` over the commit transcript of `record`, as a site signs it (step 7). */
export function signCommit(record: CommitRecord, signer: LedgerSigner): CommitSignatureRecord {
  const transcript = commitTranscript(roundContext(record.config), record.keyListHash, record.hashes, record.maskedSurvivors);
  return { siteId: signer.siteId, signature: signMessage(signer.privateKey, transcript), certificate: signer.certificatePem };
}

/**
 * `body` rewritten by `edit`, with H(RoundConfig) and H(L) recomputed from the edited config and key
 * list and every signature replaced by one of each of `signers` (in that order, repeats kept) over the
 * edited commit. The commit time and the unsigned metrics are kept.
 */
export function forgeCommit(body: CommitBody, edit: (record: CommitRecord) => CommitRecord, signers: readonly LedgerSigner[]): CommitBody {
  const { record: original, committedAt } = parseCommitBody(body as unknown as JsonValue, 'forged body');
  const edited = edit(original);
  const consistent: CommitRecord = { ...edited, roundConfigHash: roundConfigHash(edited.config), keyListHash: keyListHash(edited.keyList), signatures: [] };
  const signed: CommitRecord = { ...consistent, signatures: signers.map((signer) => signCommit(consistent, signer)) };
  // commitBody wants numeric metrics; the stored (string) ones are carried over unchanged.
  const placeholder: RoundMetrics = { participants: 0, survivors: 0, evalLossSum: 0, evalCorrect: 0, evalExamples: 0, weightSum: 0 };
  return { ...commitBody(signed, committedAt, placeholder), metrics: body.metrics };
}

/** Replaces the ledger with `bodies`, sequence numbers and record hashes recomputed (a forger with write access). */
export async function writeLedger(stateDirectory: string, bodies: readonly CommitBody[]): Promise<void> {
  const directory = join(stateDirectory, 'ledger');
  for (const name of await readdir(directory)) await unlink(join(directory, name));
  let previousRecordHash = GENESIS_HASH;
  for (const [index, value] of bodies.entries()) {
    const body = value as unknown as JsonValue;
    const sequence = index + 1;
    const hash = recordHash(sequence, previousRecordHash, body);
    const record = { formatVersion: LEDGER_FORMAT_VERSION, sequence, previousRecordHash, body, recordHash: hash };
    await writeFile(join(directory, `${String(sequence).padStart(8, '0')}.json`), JSON.stringify(record, null, 1) + '\n');
    previousRecordHash = hash;
  }
}

/** Stores `bytes` in the state directory's content-addressed store; returns the hex SHA-256. */
export async function storeBlob(stateDirectory: string, bytes: Uint8Array): Promise<string> {
  return (await ModelStore.open(stateDirectory)).put(bytes);
}

/** Reads a stored blob by hex SHA-256. */
export async function readBlob(stateDirectory: string, hash: string): Promise<Uint8Array> {
  return new Uint8Array(await (await ModelStore.open(stateDirectory)).get(hash));
}

/** A stored model with one weight changed by `delta`, stored; returns its hash (a model nobody trained). */
export async function storeAlteredModel(stateDirectory: string, modelHash: string, delta: number): Promise<string> {
  const bytes = await readBlob(stateDirectory, modelHash);
  const layout = weightsLayout(bytes);
  const values = decodeWeights(layout, bytes);
  values[0] = (values[0] as number) + delta;
  return storeBlob(stateDirectory, encodeWeights(layout, values));
}

/**
 * Model r+1 and the optimiser state after it, recomputed from a stored model, aggregate and optimiser
 * state (DESIGN.md step 7, the computation every committing site and `fedgate verify` make), stored;
 * returns their hashes. Lets a forgery stay consistent where the forger wants it to.
 */
export async function storeNextModel(
  stateDirectory: string,
  config: RoundConfig,
  previousModelHash: string,
  aggregateHash: string,
): Promise<{ newModelHash: string; optimizerStateHash: string }> {
  const previousBytes = await readBlob(stateDirectory, previousModelHash);
  const layout = weightsLayout(previousBytes);
  const model = decodeWeights(layout, previousBytes);
  const aggregateBytes = await readBlob(stateDirectory, aggregateHash);
  const sum = new Uint32Array(vectorLength(config));
  new Uint8Array(sum.buffer).set(aggregateBytes);
  const values = new Float64Array(sum.length);
  dequantizeSum(sum, roundSegments(config), roundScale(config), values);
  const { spec, state } = decodeServerOptimizerState(await readBlob(stateDirectory, toHex(config.optimizerStateHash)));
  const next = applyServerStep(spec, model, state, values.subarray(0, model.length), values[model.length] as number);
  return {
    newModelHash: await storeBlob(stateDirectory, encodeWeights(layout, next.model)),
    optimizerStateHash: await storeBlob(stateDirectory, encodeServerOptimizerState(spec, next.state)),
  };
}
