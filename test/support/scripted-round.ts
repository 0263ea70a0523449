/**
 * One SecAgg+ round as the malicious coordinator (malicious-coordinator.ts) runs it: the real
 * SecAggServer state machine (crypto/secagg/server.ts) decides everything about the protocol, and the
 * test decides when each stage is closed and sent - or not sent at all. Run every step and it is the
 * honest round of DESIGN.md "A round", commit included; stop after any step and the round never ends;
 * start it on a subset of U, with a replayed config, or announce a commit nobody signed, and it is an
 * attack.
 *
 * A stage closes when every site the server still expects has answered, refused or disconnected, or
 * when the harness's wait for it (the stage deadline of the RoundConfig) runs out; silent sites are then
 * dropouts, as with the real round driver.
 */
import { toHex } from '../../crypto/bytes.js';
import { encodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import { roundCounter, type RoundConfig } from '../../crypto/secagg/config.js';
import { decodeAggregate, encodeAggregate } from '../../crypto/secagg/aggregate-codec.js';
import { SecAggError } from '../../crypto/secagg/errors.js';
import type { ClientMessage, CommitHashes } from '../../crypto/secagg/messages.js';
import { SecAggServer } from '../../crypto/secagg/server.js';
import type { CommitRecord, CommitStatus } from '../../crypto/secagg/server-commit.js';
import { commitBody, encodeCommitRecord } from '../../crypto/secagg/commit-record-codec.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import { nextModel } from '../../model/next-model.js';
import { decodeServerOptimizerState } from '../../model/server-optimizer.js';
import { decodeWeights } from '../../model/weight-codec.js';
import type { ParameterLayout } from '../../model/weights.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import type { CoordinatorToSite } from '../../crypto/secagg/round-envelope.js';
import type { ObtainedAggregate } from './subtraction.js';

/** What a round needs of the coordinator that runs it (malicious-coordinator.ts). */
export interface RoundHost {
  readonly plan: ParameterLayout;
  readonly trust: TrustAnchor;
  send(siteId: string, message: CoordinatorToSite): boolean;
  sendRoundStart(siteIds: readonly string[], roundConfigBytes: Uint8Array, roundId: Uint8Array): string[];
  certificateOf(siteId: string): Uint8Array;
  blob(hash: Uint8Array): Uint8Array;
  publish(bytes: Uint8Array): Uint8Array;
  recordAggregate(aggregate: ObtainedAggregate): void;
  until(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void>;
}

export interface ScriptedRoundOptions {
  /** Name of the round in aggregates and messages. @default "round <counter>" */
  readonly label: string;
  /** How long a stage waits for silent sites. @default the stage's deadline in the RoundConfig */
  readonly stageWaitMs: number;
}

/** How far a round got: its unmasked aggregate, or the server's abort. */
export type RoundEnd =
  | { readonly status: 'aggregated'; readonly result: AggregateResult }
  | { readonly status: 'aborted'; readonly reason: string; readonly message: string };

export interface CommitOutcome {
  readonly hashes: CommitHashes;
  /** Model r+1 (encoded weights) as the coordinator computed it from the aggregate. */
  readonly newModel: Uint8Array;
  readonly status: CommitStatus;
  /** The quorum-signed record, when the quorum was reached. */
  readonly record: CommitRecord | undefined;
}

/** What a RoundCommitted claims: the ledger position and the model the round supposedly produced. */
export interface CommitClaim {
  readonly sequence: number;
  readonly newModelHash: Uint8Array;
}

export class ScriptedRound {
  readonly bytes: Uint8Array;
  readonly roundId: Uint8Array;
  /** Hex round id. */
  readonly label: string;
  readonly name: string;
  private serverValue: SecAggServer | undefined;
  private readonly gone = new Set<string>();
  private readonly refused = new Set<string>();

  constructor(
    private readonly coordinator: RoundHost,
    readonly config: RoundConfig,
    private readonly options: Partial<ScriptedRoundOptions>,
  ) {
    this.bytes = encodeRoundConfig(config);
    this.roundId = config.roundId;
    this.label = toHex(config.roundId);
    this.name = options.label ?? `round ${roundCounter(config.roundId)}`;
  }

  get server(): SecAggServer {
    if (this.serverValue === undefined) throw new Error(`${this.name} has not started`);
    return this.serverValue;
  }

  /**
   * Step 1: RoundStart (these exact RoundConfig bytes) to `siteIds` - by default every member of U. Members
   * it is not sent to count as dropouts from the start. Returns the sites it reached.
   */
  start(siteIds: readonly string[] = this.config.participants, roundConfigBytes: Uint8Array = this.bytes): string[] {
    const reached = this.coordinator.sendRoundStart(siteIds, roundConfigBytes, this.roundId);
    for (const siteId of this.config.participants) if (!reached.includes(siteId)) this.gone.add(siteId);
    const certificates = new Map<string, Uint8Array>(reached.map((siteId) => [siteId, this.coordinator.certificateOf(siteId)]));
    this.serverValue = new SecAggServer({ config: this.config, certificates, trust: this.coordinator.trust, now: new Date() });
    return reached;
  }

  /** Step 2 and 3: AdvertiseKeys, the key list, the nonce reveal and graph, ShareKeys and the share deliveries. */
  async keyExchange(): Promise<void> {
    const { server, config } = this;
    await this.collect(config.deadlines.advertiseKeysMs);
    const keyList = server.closeAdvertiseKeys();
    for (const entry of keyList.entries) this.coordinator.send(entry.siteId, { kind: 'stage', message: keyList });
    await this.collect(config.deadlines.advertiseKeysMs);
    for (const [siteId, graph] of server.closeNonceReveal()) this.coordinator.send(siteId, { kind: 'stage', message: graph });
    await this.collect(config.deadlines.shareKeysMs);
    for (const [siteId, delivery] of server.closeShareKeys()) this.coordinator.send(siteId, { kind: 'stage', message: delivery });
  }

  /** Step 4: waits for the masked inputs (training included). */
  async maskedInputs(): Promise<void> {
    await this.collect(this.config.deadlines.maskedInputMs);
  }

  /** Steps 5 and 6: ConsistencyCheck and Unmask; records the aggregate with the coordinator. */
  async unmask(): Promise<AggregateResult> {
    const { server, config } = this;
    const consistency = server.closeMaskedInput();
    for (const siteId of consistency.survivors) this.coordinator.send(siteId, { kind: 'stage', message: consistency });
    await this.collect(config.deadlines.consistencyCheckMs);
    const request = server.closeConsistencyCheck();
    for (const siteId of consistency.survivors) this.coordinator.send(siteId, { kind: 'stage', message: request });
    await this.collect(config.deadlines.unmaskMs);
    const result = server.closeUnmask();
    // The server's buffers are its own: keep copies.
    this.coordinator.recordAggregate({ label: this.name, config, values: new Float64Array(result.values), survivors: [...result.maskedSurvivors] });
    return result;
  }

  /**
   * Steps 2-6 in one: the unmasked aggregate, or the server's abort - announced to every member of U as
   * an honest coordinator does, so the sites end the round.
   */
  async aggregate(): Promise<RoundEnd> {
    try {
      await this.keyExchange();
      await this.maskedInputs();
      return { status: 'aggregated', result: await this.unmask() };
    } catch (error) {
      if (!(error instanceof SecAggError) || error.code !== 'ABORTED') throw error;
      this.abort(error.reason, error.message);
      return { status: 'aborted', reason: error.reason, message: error.message };
    }
  }

  /**
   * Step 7: model r+1 and the optimiser state from model r, the aggregate and the RoundConfig's optimiser
   * state (all served by hash, as the real coordinator's finalizer does), the CommitRequest to U3, and the
   * commit signatures. Announcing the commit is the test's move (announceCommitted).
   */
  async commit(result: AggregateResult): Promise<CommitOutcome> {
    const { server, config } = this;
    const plan = this.coordinator.plan;
    const model = decodeWeights(plan, this.coordinator.blob(config.modelHash));
    const { spec, state } = decodeServerOptimizerState(this.coordinator.blob(config.optimizerStateHash));
    const aggregateBytes = new Uint8Array(encodeAggregate(result.sum));
    const next = nextModel({ layout: plan, model, optimizer: spec, optimizerState: state, aggregate: decodeAggregate(config, aggregateBytes) });
    const hashes: CommitHashes = {
      previousModelHash: config.modelHash,
      aggregateHash: this.coordinator.publish(aggregateBytes),
      newModelHash: this.coordinator.publish(next.modelBytes),
      optimizerStateHash: this.coordinator.publish(next.optimizerStateBytes),
    };
    const request = server.beginCommit(hashes);
    for (const siteId of result.maskedSurvivors) this.coordinator.send(siteId, { kind: 'stage', message: request });
    await this.collect(config.deadlines.commitMs);
    const status = server.commitStatus();
    return { hashes, newModel: next.modelBytes, status, record: status.committed ? server.commitRecord() : undefined };
  }

  /**
   * RoundCommitted to every connected member of U, claiming `claim`. Today's wire carries the round id,
   * the ledger sequence, the new model hash and a signature count; the signed record itself does not
   * travel yet (DESIGN.md step 7 asks sites to verify it): when RoundCommitted carries it, `record` is
   * what goes into the message here - absent for an unsigned announcement, forged or below quorum for
   * the other attacks.
   */
  announceCommitted(claim: CommitClaim, record: CommitRecord | undefined): void {
    // The record as a coordinator's ledger would hold it (metrics are unsigned and informative); none for
    // an unsigned announcement.
    const commitRecord = record === undefined ? new Uint8Array(0) : encodeCommitRecord(commitBody(record, new Date(), { participants: this.config.participants.length, survivors: record.maskedSurvivors.length, evalLossSum: 0, evalCorrect: 0, evalExamples: 0, weightSum: 0 }));
    for (const siteId of this.config.participants) {
      this.coordinator.send(siteId, { kind: 'committed', roundId: this.roundId, sequence: claim.sequence, newModelHash: claim.newModelHash, signatures: record?.signatures.length ?? 0, commitRecord });
    }
  }

  /** RoundAbort to every connected member of U: the sites end the round. */
  abort(reason = 'ABORTED_BY_COORDINATOR', message = 'the coordinator ended the round'): void {
    for (const siteId of this.config.participants) this.coordinator.send(siteId, { kind: 'abort', roundId: this.roundId, reason, message });
  }

  /** A stage or upload from `siteId` (throws the state machine's error when it is refused). */
  receive(siteId: string, message: ClientMessage): void {
    this.server.receive(siteId, message);
  }

  siteRefused(siteId: string): void {
    this.refused.add(siteId);
  }

  siteDisconnected(siteId: string): void {
    this.gone.add(siteId);
  }

  private async collect(deadlineMs: number): Promise<void> {
    const waitMs = this.options.stageWaitMs ?? deadlineMs;
    const settled = (): boolean => this.server.pending().every((siteId) => this.gone.has(siteId) || this.refused.has(siteId));
    // A stage whose deadline passes closes with whoever answered: the silent sites are dropouts.
    await this.coordinator.until(settled, waitMs, () => `${this.name}`).catch(() => undefined);
  }
}
