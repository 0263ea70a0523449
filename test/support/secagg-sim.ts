/**
 * Simulation harness of SecAgg+ rounds for tests and benchmarks: drives one SecAggServer and one
 * SecAggClient per site through a whole round in-process, with dropouts at any stage and hooks that let
 * a test play a hostile coordinator (rewrite what a site receives) or a hostile site (rewrite what it
 * sends).
 *
 * PKI: a CA and one participant certificate per site (CN = site id, OU = role), RSA-2048 keys from
 * node:crypto and certificates built with node-forge. `createTestFederation` keeps its keys in memory
 * only; `cachedFederation` also keeps them, for a day, in the OS temp directory (see there).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { utf8 } from '../../crypto/bytes.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import { sha256 } from '../../crypto/hash.js';
import { RandomSource } from '../../crypto/quantize.js';
import { encodeAggregate } from '../../crypto/secagg/aggregate-codec.js';
import { SecAggClient } from '../../crypto/secagg/client.js';
import { createRoundConfig, makeRoundId, vectorLength, type RoundConfig } from '../../crypto/secagg/config.js';
import { SecAggError } from '../../crypto/secagg/errors.js';
import { buildNeighbourGraph, graphSeed, sortSiteIds } from '../../crypto/graph.js';
import { advertDigest, keyListHash } from '../../crypto/secagg/transcript.js';
import type {
  AdvertiseKeysMessage,
  NonceRevealMessage,
  ClientMessage,
  ClientStage,
  CommitRequestMessage,
  ConsistencyRequestMessage,
  GraphMessage,
  KeyListMessage,
  ShareDeliveryMessage,
  UnmaskRequestMessage,
  UnmaskResponseMessage,
} from '../../crypto/secagg/messages.js';
import type { SitePolicy } from '../../crypto/secagg/policy.js';
import { SecAggServer, type SecAggServerOptions } from '../../crypto/secagg/server.js';
import { CLIENT_STAGES } from '../../crypto/secagg/stages.js';
import type { CommitStatus } from '../../crypto/secagg/server-commit.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import { quantizeUpdate, updateWeight, type LocalUpdate } from '../../crypto/secagg/update-vector.js';
import { NO_COLLUSION_MARGIN } from './protocol-margin.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface TestSite {
  readonly siteId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly certificatePem: string;
  readonly serial: string;
}

export interface TestFederation {
  readonly caPem: string;
  readonly trust: TrustAnchor;
  readonly sites: readonly TestSite[];
  site(siteId: string): TestSite;
  /** Issues one more certificate under the same CA (e.g. another role, an expired one). */
  issue(siteId: string, options?: IssueOptions): TestSite;
}

export interface IssueOptions {
  readonly role?: 'participant' | 'coordinator' | 'operator';
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

interface Authority {
  readonly key: forge.pki.rsa.PrivateKey;
  readonly certificate: forge.pki.Certificate;
}

function rsaKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

function serialHex(): string {
  // Positive and without a leading zero byte, so the DER INTEGER is canonical.
  const bytes = randomBytes(12);
  bytes[0] = ((bytes[0] as number) & 0x3f) | 0x10;
  return bytes.toString('hex').toUpperCase();
}

function createAuthority(): { authority: Authority; pem: string } {
  const { privateKey, publicKey } = rsaKeyPair();
  const key = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  certificate.serialNumber = serialHex();
  const now = Date.now();
  certificate.validity.notBefore = new Date(now - DAY_MS);
  certificate.validity.notAfter = new Date(now + 30 * DAY_MS);
  const subject = [{ name: 'commonName', value: 'fedgate secagg test CA' }];
  certificate.setSubject(subject);
  certificate.setIssuer(subject);
  certificate.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  certificate.sign(key, forge.md.sha256.create());
  return { authority: { key, certificate }, pem: forge.pki.certificateToPem(certificate) };
}

function issueSite(authority: Authority, siteId: string, options: IssueOptions = {}): TestSite {
  const { privateKey, publicKey } = rsaKeyPair();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const serial = serialHex();
  certificate.serialNumber = serial;
  const now = Date.now();
  certificate.validity.notBefore = options.notBefore ?? new Date(now - DAY_MS);
  certificate.validity.notAfter = options.notAfter ?? new Date(now + 7 * DAY_MS);
  certificate.setSubject([
    { name: 'commonName', value: siteId },
    { name: 'organizationalUnitName', value: options.role ?? 'participant' },
  ]);
  certificate.setIssuer(authority.certificate.subject.attributes);
  certificate.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', clientAuth: true },
    { name: 'authorityKeyIdentifier', keyIdentifier: authority.certificate.generateSubjectKeyIdentifier().getBytes() },
  ]);
  certificate.sign(authority.key, forge.md.sha256.create());
  return { siteId, privateKey, publicKey, certificatePem: forge.pki.certificateToPem(certificate), serial };
}

/** Site ids "site-00", "site-01", ... (zero-padded so id order is numeric order). */
export function siteIds(count: number, prefix = 'site-'): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}${String(index).padStart(2, '0')}`);
}

/** A CA and `count` participant sites. Generating RSA keys takes a while: reuse through `cachedFederation`. */
export function createTestFederation(count: number, prefix = 'site-'): TestFederation {
  const { authority, pem } = createAuthority();
  return federationOf(authority, pem, siteIds(count, prefix).map((siteId) => issueSite(authority, siteId)));
}

function federationOf(authority: Authority, pem: string, sites: readonly TestSite[]): TestFederation {
  const bySite = new Map(sites.map((site) => [site.siteId, site]));
  return {
    caPem: pem,
    trust: { caCertificate: new X509Certificate(pem), revokedSerials: new Set() },
    sites,
    site(siteId) {
      const site = bySite.get(siteId);
      if (site === undefined) throw new Error(`no test site ${JSON.stringify(siteId)}`);
      return site;
    },
    issue: (siteId, options) => issueSite(authority, siteId, options),
  };
}

const cache = new Map<string, TestFederation>();

/**
 * One federation per (size, prefix) per test file (module instances are per file), and across test
 * processes for a day: RSA key generation is most of a short test file's time (20 sites: seconds of
 * CPU), and a mutation run (`npm run test:mutation`) imports a test file again for every mutant. The
 * keys are throwaway test keys in a 0700 directory of the OS temp dir; a file older than a day, or
 * unreadable, is replaced (its certificates stay valid for 7 days from issue). FEDGATE_TEST_PKI_CACHE=0
 * generates fresh keys every time.
 */
export function cachedFederation(count: number, prefix = 'site-'): TestFederation {
  const key = `${prefix}:${count}`;
  let federation = cache.get(key);
  if (federation === undefined) {
    federation = storedFederation(count, prefix);
    cache.set(key, federation);
  }
  return federation;
}

const STORED_FOR_MS = DAY_MS;

interface StoredFederation {
  readonly issuedAt: number;
  readonly caPem: string;
  readonly caKeyPem: string;
  readonly sites: readonly { readonly siteId: string; readonly keyPem: string; readonly certificatePem: string; readonly serial: string }[];
}

function storedFederation(count: number, prefix: string): TestFederation {
  if (process.env.FEDGATE_TEST_PKI_CACHE === '0') return createTestFederation(count, prefix);
  const directory = join(tmpdir(), `fedgate-test-pki-${process.getuid?.() ?? 'user'}`);
  const path = join(directory, `${prefix}${count}.json`);
  try {
    const stored = JSON.parse(readFileSync(path, 'utf8')) as StoredFederation;
    if (Date.now() - stored.issuedAt < STORED_FOR_MS && stored.sites.length === count) {
      const authority: Authority = { key: forge.pki.privateKeyFromPem(stored.caKeyPem), certificate: forge.pki.certificateFromPem(stored.caPem) };
      const sites = stored.sites.map(({ siteId, keyPem, certificatePem, serial }) => {
        const privateKey = createPrivateKey(keyPem);
        return { siteId, privateKey, publicKey: createPublicKey(privateKey), certificatePem, serial };
      });
      return federationOf(authority, stored.caPem, sites);
    }
  } catch {
    // Absent or damaged: made again below.
  }
  const { authority, pem } = createAuthority();
  const sites = siteIds(count, prefix).map((siteId) => issueSite(authority, siteId));
  const stored: StoredFederation = {
    issuedAt: Date.now(),
    caPem: pem,
    caKeyPem: forge.pki.privateKeyToPem(authority.key),
    sites: sites.map((site) => ({ siteId: site.siteId, keyPem: site.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), certificatePem: site.certificatePem, serial: site.serial })),
  };
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  // Written whole and renamed, so a concurrent test process reads the old file or the new, never half.
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(temporary, JSON.stringify(stored), { mode: 0o600 });
  renameSync(temporary, path);
  return federationOf(authority, pem, sites);
}

// ---------------------------------------------------------------------------------------------------
// Rounds
// ---------------------------------------------------------------------------------------------------

export const TEST_TASK_HASH = sha256(utf8('fedgate test task'));
export const TEST_MODEL_HASH = sha256(utf8('fedgate test model r'));
export const TEST_OPTIMIZER_HASH = sha256(utf8('fedgate test optimiser state r'));

export interface TestConfigOptions {
  readonly participants: readonly string[];
  readonly degree: number;
  readonly threshold?: number;
  /** d, the number of parameters. @default 1000 */
  readonly parameters?: number;
  readonly plaintext?: boolean;
  /** Round counter (distinct counters give distinct round ids). @default 1 */
  readonly counter?: number;
  readonly clipBound?: number;
}

export function testRoundConfig(options: TestConfigOptions): RoundConfig {
  return createRoundConfig({
    federationId: 'fedgate-test',
    roundId: makeRoundId(BigInt(options.counter ?? 1), new Uint8Array(randomBytes(16))),
    participants: options.participants,
    taskHash: TEST_TASK_HASH,
    modelHash: TEST_MODEL_HASH,
    optimizerStateHash: TEST_OPTIMIZER_HASH,
    hyperParameters: { learning_rate: 0.05, local_epochs: 1, optimizer: 'sgd' },
    neighbourDegree: options.degree,
    ...(options.threshold === undefined ? {} : { reconstructionThreshold: options.threshold }),
    layout: {
      parameterSegments: [{ length: options.parameters ?? 1000, bound: options.clipBound ?? 1 }],
      maxLossPerExample: 10,
      maxEvalExamples: 1000,
    },
    maxWeight: 500,
    plaintext: options.plaintext ?? false,
  });
}

export function testPolicy(overrides: Partial<SitePolicy> = {}): SitePolicy {
  return { pinnedTaskHashes: [TEST_TASK_HASH], minParticipants: 3, minThreshold: 2, allowPlaintext: false, ...NO_COLLUSION_MARGIN, ...overrides };
}

/** Seed of a site's stochastic-rounding RandomSource, so tests can recompute its quantized vector. */
export function quantizationSeed(siteId: string, config: RoundConfig): Uint8Array {
  return sha256(utf8('fedgate test quantization'), config.roundId, utf8(siteId));
}

/** A deterministic pseudo-random update for `siteId` (values beyond the clipping bound included). */
export function testUpdate(config: RoundConfig, siteId: string): LocalUpdate {
  const d = config.layout.parameterSegments.reduce((sum, segment) => sum + segment.length, 0);
  const seed = sha256(utf8('fedgate test update'), utf8(siteId));
  let state = new DataView(seed.buffer).getUint32(0, false) | 1;
  const next = (): number => {
    // xorshift32: enough spread for test data, no crypto needed.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
  const delta = new Float32Array(d);
  for (let i = 0; i < d; i++) delta[i] = (next() - 0.5) * 2.5;
  const evalExamples = 100 + Math.floor(next() * 400);
  return {
    delta,
    weight: updateWeight(50 + Math.floor(next() * 600), config.maxWeight),
    evalLossSum: next() * evalExamples,
    evalCorrect: Math.floor(next() * evalExamples),
    evalExamples,
  };
}

/** The quantized vector of `siteId` exactly as its client computes it before masking. */
export function quantizedVector(config: RoundConfig, siteId: string, update: LocalUpdate): Uint32Array {
  const out = new Uint32Array(vectorLength(config));
  quantizeUpdate(config, update, out, RandomSource.seeded(quantizationSeed(siteId, config)));
  return out;
}

/** Wrapping sum (mod 2^32) of vectors. */
export function wrappedSum(vectors: Iterable<Uint32Array>, length: number): Uint32Array {
  const sum = new Uint32Array(length);
  for (const vector of vectors) for (let i = 0; i < length; i++) sum[i] = ((sum[i] as number) + (vector[i] as number)) >>> 0;
  return sum;
}

/** The first stage a dropped site no longer takes part in. */
export type DropPoint = ClientStage;

/** What a site receives, stage by stage; a hook rewrites it (a hostile coordinator). */
export interface SiteInbox {
  readonly roundConfig?: (siteId: string, config: RoundConfig) => RoundConfig;
  readonly keyList?: (siteId: string, message: KeyListMessage) => KeyListMessage;
  readonly graph?: (siteId: string, message: GraphMessage) => GraphMessage;
  readonly shareDelivery?: (siteId: string, message: ShareDeliveryMessage) => ShareDeliveryMessage;
  readonly consistencyRequest?: (siteId: string, message: ConsistencyRequestMessage) => ConsistencyRequestMessage;
  readonly unmaskRequest?: (siteId: string, message: UnmaskRequestMessage) => UnmaskRequestMessage;
  readonly commitRequest?: (siteId: string, message: CommitRequestMessage) => CommitRequestMessage;
}

export interface SimulationOptions {
  readonly federation: TestFederation;
  readonly config: RoundConfig;
  /** Site policy by id. @default testPolicy() */
  readonly policy?: (siteId: string) => SitePolicy;
  readonly drops?: ReadonlyMap<string, DropPoint>;
  /** Decides drops while the round runs (e.g. from the graph, once the server has one). */
  readonly drop?: (siteId: string, stage: ClientStage, server: SecAggServer) => boolean;
  readonly inbox?: SiteInbox;
  /** Rewrites what a site sends (a hostile site); the server sees the result. */
  readonly outbox?: (siteId: string, message: ClientMessage) => ClientMessage;
  readonly update?: (siteId: string) => LocalUpdate;
  /** Run Commit after the aggregate. @default false */
  readonly commit?: boolean;
  readonly serverOptions?: Partial<SecAggServerOptions>;
}

export interface SimulationResult {
  readonly outcome: 'aggregated' | 'aborted';
  /** The server's abort (typed), when the round aborted. */
  readonly abort: SecAggError | undefined;
  readonly aggregate: AggregateResult | undefined;
  readonly server: SecAggServer;
  readonly clients: ReadonlyMap<string, SecAggClient>;
  /** Every message each site output, in order. */
  readonly sent: ReadonlyMap<string, readonly ClientMessage[]>;
  /** The Unmask answer of each site that gave one. */
  readonly reveals: ReadonlyMap<string, UnmaskResponseMessage>;
  /** Typed refusals of sites. */
  readonly refusals: ReadonlyMap<string, SecAggError>;
  /** Messages the server rejected. */
  readonly rejections: readonly { readonly siteId: string; readonly error: SecAggError }[];
  /** Each site's quantized (unmasked) vector, recomputed independently of its client. */
  readonly quantized: ReadonlyMap<string, Uint32Array>;
  readonly commitStatus: CommitStatus | undefined;
}

const STAGE_ORDER: readonly ClientStage[] = CLIENT_STAGES;

/**
 * Runs a round stage by stage: one method per stage close, each driving every active site through its
 * step (with the inbox hooks and drops applied) and passing what it sends to the server. Tests that
 * play a hostile coordinator run the honest stages with it and then take over with `clients`.
 */
export class RoundDriver {
  readonly now = new Date();
  readonly server: SecAggServer;
  readonly clients = new Map<string, SecAggClient>();
  readonly sent = new Map<string, ClientMessage[]>();
  readonly reveals = new Map<string, UnmaskResponseMessage>();
  readonly refusals = new Map<string, SecAggError>();
  readonly rejections: { siteId: string; error: SecAggError }[] = [];
  readonly quantized = new Map<string, Uint32Array>();
  aggregate: AggregateResult | undefined;
  commitStatus: CommitStatus | undefined;
  /** L as the server announced it. */
  keyList: KeyListMessage | undefined;
  private readonly inbox: SiteInbox;

  constructor(readonly options: SimulationOptions) {
    const { federation, config } = options;
    this.inbox = options.inbox ?? {};
    this.server = new SecAggServer({
      config,
      certificates: new Map(federation.sites.map((site) => [site.siteId, site.certificatePem])),
      trust: federation.trust,
      now: this.now,
      ...options.serverOptions,
    });
    for (const siteId of config.participants) {
      const site = federation.site(siteId);
      this.clients.set(
        siteId,
        new SecAggClient({
          siteId,
          signingKey: site.privateKey,
          policy: options.policy?.(siteId) ?? testPolicy(),
          trust: federation.trust,
          random: RandomSource.seeded(quantizationSeed(siteId, config)),
        }),
      );
      this.sent.set(siteId, []);
    }
  }

  get config(): RoundConfig {
    return this.options.config;
  }

  client(siteId: string): SecAggClient {
    const client = this.clients.get(siteId);
    if (client === undefined) throw new Error(`no client for ${siteId}`);
    return client;
  }

  /** Whether `siteId` still takes part at `stage` (not dropped, not refused). */
  active(siteId: string, stage: ClientStage): boolean {
    if (this.refusals.has(siteId)) return false;
    const dropped = (candidate: ClientStage): boolean => this.options.drop?.(siteId, candidate, this.server) ?? false;
    if (STAGE_ORDER.slice(0, STAGE_ORDER.indexOf(stage) + 1).some(dropped)) return false;
    const drop = this.options.drops?.get(siteId);
    return drop === undefined || STAGE_ORDER.indexOf(stage) < STAGE_ORDER.indexOf(drop);
  }

  /**
   * One site step: a typed refusal is recorded; a message is (optionally rewritten by the outbox and)
   * passed to the server, whose typed rejections are recorded. Returns what the site sent.
   */
  step(siteId: string, produce: () => ClientMessage | undefined, toServer = true): ClientMessage | undefined {
    let message: ClientMessage | undefined;
    try {
      message = produce();
    } catch (error) {
      if (!(error instanceof SecAggError)) throw error;
      this.refusals.set(siteId, error);
      return undefined;
    }
    if (message === undefined) return undefined;
    const outgoing = this.options.outbox === undefined ? message : this.options.outbox(siteId, message);
    this.sent.get(siteId)?.push(outgoing);
    if (outgoing.stage === 'unmask') this.reveals.set(siteId, outgoing);
    if (toServer) {
      try {
        this.server.receive(siteId, outgoing);
      } catch (error) {
        if (!(error instanceof SecAggError)) throw error;
        this.rejections.push({ siteId, error });
      }
    }
    return outgoing;
  }

  advertise(): KeyListMessage {
    for (const siteId of this.config.participants) {
      if (!this.active(siteId, 'advertise_keys')) continue;
      this.step(siteId, () => this.client(siteId).advertiseKeys(this.inbox.roundConfig?.(siteId, this.config) ?? this.config));
    }
    this.keyList = this.server.closeAdvertiseKeys();
    return this.keyList;
  }

  revealNonces(keyList: KeyListMessage): Map<string, GraphMessage> {
    for (const { siteId } of keyList.entries) {
      if (!this.active(siteId, 'nonce_reveal')) continue;
      this.step(siteId, () => this.client(siteId).revealNonce(this.inbox.keyList?.(siteId, keyList) ?? keyList));
    }
    return this.server.closeNonceReveal();
  }

  dealShares(graphs: ReadonlyMap<string, GraphMessage>): Map<string, ShareDeliveryMessage> {
    for (const [siteId, message] of graphs) {
      if (!this.active(siteId, 'share_keys')) continue;
      this.step(siteId, () => this.client(siteId).shareKeys(this.inbox.graph?.(siteId, message) ?? message, this.now));
    }
    return this.server.closeShareKeys();
  }

  maskInputs(deliveries: ReadonlyMap<string, ShareDeliveryMessage>): ConsistencyRequestMessage {
    const updateOf = this.options.update ?? ((siteId: string) => testUpdate(this.config, siteId));
    for (const [siteId, message] of deliveries) {
      if (!this.active(siteId, 'masked_input')) continue;
      this.step(siteId, () => {
        const client = this.client(siteId);
        client.acceptShares(this.inbox.shareDelivery?.(siteId, message) ?? message);
        const update = updateOf(siteId);
        this.quantized.set(siteId, quantizedVector(this.config, siteId, update));
        return client.maskedInput(update);
      });
    }
    return this.server.closeMaskedInput();
  }

  signConsistency(request: ConsistencyRequestMessage): UnmaskRequestMessage {
    for (const siteId of request.survivors) {
      if (!this.active(siteId, 'consistency_check')) continue;
      this.step(siteId, () => this.client(siteId).consistencyCheck(this.inbox.consistencyRequest?.(siteId, request) ?? request));
    }
    return this.server.closeConsistencyCheck();
  }

  unmask(request: UnmaskRequestMessage): AggregateResult {
    for (const { siteId } of request.signatures) {
      if (!this.active(siteId, 'unmask')) continue;
      this.step(siteId, () => this.client(siteId).unmask(this.inbox.unmaskRequest?.(siteId, request) ?? request));
    }
    this.aggregate = this.server.closeUnmask();
    return this.aggregate;
  }

  commit(aggregate: AggregateResult): CommitStatus {
    // What an honest site computes for itself; an inbox hook may still show it a different request.
    const computed = {
      previousModelHash: this.config.modelHash,
      aggregateHash: sha256(encodeAggregate(aggregate.sum)),
      newModelHash: sha256(utf8('fedgate test model r+1')),
      optimizerStateHash: sha256(utf8('fedgate test optimiser state r+1')),
    };
    const request = this.server.beginCommit(computed);
    for (const siteId of aggregate.maskedSurvivors) {
      if (!this.active(siteId, 'commit')) continue;
      this.step(siteId, () => this.client(siteId).commit(this.inbox.commitRequest?.(siteId, request) ?? request, computed));
    }
    this.commitStatus = this.server.commitStatus();
    return this.commitStatus;
  }

  /** Runs every stage; a server abort ends the run early. */
  run(): SimulationResult {
    let abort: SecAggError | undefined;
    try {
      const aggregate = this.unmask(this.signConsistency(this.maskInputs(this.dealShares(this.revealNonces(this.advertise())))));
      if (this.options.commit === true) this.commit(aggregate);
    } catch (error) {
      if (!(error instanceof SecAggError && error.code === 'ABORTED')) throw error;
      abort = error;
    } finally {
      for (const client of this.clients.values()) client.dispose();
    }
    return {
      outcome: abort === undefined ? 'aggregated' : 'aborted',
      abort,
      aggregate: this.aggregate,
      server: this.server,
      clients: this.clients,
      sent: this.sent,
      reveals: this.reveals,
      refusals: this.refusals,
      rejections: this.rejections,
      quantized: this.quantized,
      commitStatus: this.commitStatus,
    };
  }
}

/** Drives one whole round. Never throws for protocol outcomes: aborts and refusals are in the result. */
export function simulateRound(options: SimulationOptions): SimulationResult {
  return new RoundDriver(options).run();
}

/** The exact wrapped sum the aggregate must equal: the quantized vectors of the sites in U3. */
export function expectedSum(result: SimulationResult): Uint32Array {
  const survivors = result.aggregate?.maskedSurvivors ?? [];
  const length = vectorLength(result.server.roundConfig);
  return wrappedSum(
    survivors.map((siteId) => {
      const vector = result.quantized.get(siteId);
      if (vector === undefined) throw new Error(`no quantized vector recorded for ${siteId}`);
      return vector;
    }),
    length,
  );
}

// ---------------------------------------------------------------------------------------------------
// A coordinator that checks nothing: builds L and graph messages from whatever the sites sent, so tests
// can show sites different views without an honest SecAggServer in the way.
// ---------------------------------------------------------------------------------------------------

/** L from adverts as given (no signature checks). */
export function uncheckedKeyList(roundId: Uint8Array, adverts: ReadonlyMap<string, AdvertiseKeysMessage>): KeyListMessage {
  const entries = sortSiteIds(adverts.keys()).map((siteId) => {
    const advert = adverts.get(siteId) as AdvertiseKeysMessage;
    return {
      siteId,
      advertDigest: advertDigest(siteId, advert.cipherPublicKey, advert.maskPublicKey, advert.nonceCommitment, advert.signature),
      nonceCommitment: advert.nonceCommitment,
    };
  });
  return { stage: 'key_list', roundId, entries };
}

export interface UncheckedGraphInput {
  readonly federation: TestFederation;
  readonly roundId: Uint8Array;
  /** The H(RoundConfig) the seed is derived with (a hostile coordinator may pick a site's own view). */
  readonly roundConfigHash: Uint8Array;
  readonly degree: number;
  readonly keyList: KeyListMessage;
  readonly adverts: ReadonlyMap<string, AdvertiseKeysMessage>;
  readonly reveals: ReadonlyMap<string, NonceRevealMessage>;
}

/** The graph message for `siteId` under the seed of `input` (no checks of any kind). */
export function uncheckedGraphMessage(siteId: string, input: UncheckedGraphInput): GraphMessage {
  const members = input.keyList.entries.map((entry) => entry.siteId);
  const nonces = new Map(members.map((member) => [member, (input.reveals.get(member) as NonceRevealMessage).nonce]));
  const graph = buildNeighbourGraph(graphSeed(input.roundConfigHash, keyListHash(input.keyList.entries), nonces, members), members, input.degree);
  return {
    stage: 'graph',
    roundId: input.roundId,
    nonces: members.map((member) => ({ siteId: member, nonce: nonces.get(member) as Uint8Array })),
    neighbours: graph.neighbours(siteId).map((neighbour) => ({
      siteId: neighbour,
      advert: input.adverts.get(neighbour) as AdvertiseKeysMessage,
      keyListSignature: (input.reveals.get(neighbour) as NonceRevealMessage).keyListSignature,
      certificate: input.federation.site(neighbour).certificatePem,
    })),
    revokedSerials: [],
  };
}

/** The stages of the messages a site output, in order. */
export function stagesSent(messages: readonly ClientMessage[] | undefined): ClientStage[] {
  return (messages ?? []).map((message) => message.stage);
}
