/**
 * Simulation harness of SecAgg+ rounds for tests and benchmarks: drives one SecAggServer and one
 * SecAggClient per site through a whole round in-process, with dropouts at any stage and hooks that let
 * a test play a hostile coordinator (rewrite what a site receives) or a hostile site (rewrite what it
 * sends).
 *
 * PKI: a CA and one participant certificate per site (CN = site id, OU = role), RSA-2048 keys from
 * node:crypto (fast) and certificates built with node-forge. Keys live in memory only.
 */
import { generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { utf8 } from '../../crypto/bytes.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import { sha256 } from '../../crypto/hash.js';
import { RandomSource } from '../../crypto/quantize.js';
import { SecAggClient } from '../../crypto/secagg/client.js';
import { createRoundConfig, makeRoundId, vectorLength, type RoundConfig } from '../../crypto/secagg/config.js';
import { SecAggError } from '../../crypto/secagg/errors.js';
import type {
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
import type { CommitStatus } from '../../crypto/secagg/server-commit.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import { quantizeUpdate, updateWeight, type LocalUpdate } from '../../crypto/secagg/update-vector.js';

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
  const sites = siteIds(count, prefix).map((siteId) => issueSite(authority, siteId));
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

/** One federation per (size, prefix) per test file (module instances are per file). */
export function cachedFederation(count: number, prefix = 'site-'): TestFederation {
  const key = `${prefix}:${count}`;
  let federation = cache.get(key);
  if (federation === undefined) {
    federation = createTestFederation(count, prefix);
    cache.set(key, federation);
  }
  return federation;
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
  return { pinnedTaskHashes: [TEST_TASK_HASH], minParticipants: 3, minThreshold: 2, allowPlaintext: false, ...overrides };
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

/** Drives one whole round. Never throws for protocol outcomes: aborts and refusals are in the result. */
export function simulateRound(options: SimulationOptions): SimulationResult {
  const { federation, config } = options;
  const now = new Date();
  const drops = options.drops ?? new Map<string, DropPoint>();
  const inbox = options.inbox ?? {};
  const updateOf = options.update ?? ((siteId: string) => testUpdate(config, siteId));
  const server = new SecAggServer({
    config,
    certificates: new Map(federation.sites.map((site) => [site.siteId, site.certificatePem])),
    trust: federation.trust,
    now,
    ...options.serverOptions,
  });
  const clients = new Map<string, SecAggClient>();
  const sent = new Map<string, ClientMessage[]>();
  const reveals = new Map<string, UnmaskResponseMessage>();
  const refusals = new Map<string, SecAggError>();
  const rejections: { siteId: string; error: SecAggError }[] = [];
  const quantized = new Map<string, Uint32Array>();
  let aggregate: AggregateResult | undefined;
  let commitStatus: CommitStatus | undefined;

  const stageOrder: readonly ClientStage[] = ['advertise_keys', 'nonce_reveal', 'share_keys', 'masked_input', 'consistency_check', 'unmask', 'commit'];
  const active = (siteId: string, stage: ClientStage): boolean => {
    const drop = drops.get(siteId);
    if (refusals.has(siteId)) return false;
    return drop === undefined || stageOrder.indexOf(stage) < stageOrder.indexOf(drop);
  };
  /** Runs one site step; a typed refusal is recorded, the message (if any) goes to the server. */
  const step = (siteId: string, produce: () => ClientMessage | undefined): void => {
    let message: ClientMessage | undefined;
    try {
      message = produce();
    } catch (error) {
      if (!(error instanceof SecAggError)) throw error;
      refusals.set(siteId, error);
      return;
    }
    if (message === undefined) return;
    const outgoing = options.outbox === undefined ? message : options.outbox(siteId, message);
    sent.get(siteId)?.push(outgoing);
    if (outgoing.stage === 'unmask') reveals.set(siteId, outgoing);
    try {
      server.receive(siteId, outgoing);
    } catch (error) {
      if (!(error instanceof SecAggError)) throw error;
      rejections.push({ siteId, error });
    }
  };
  const result = (abort: SecAggError | undefined): SimulationResult => ({
    outcome: abort === undefined ? 'aggregated' : 'aborted',
    abort,
    aggregate,
    server,
    clients,
    sent,
    reveals,
    refusals,
    rejections,
    quantized,
    commitStatus,
  });

  try {
    for (const siteId of config.participants) {
      const site = federation.site(siteId);
      const client = new SecAggClient({
        siteId,
        signingKey: site.privateKey,
        policy: options.policy?.(siteId) ?? testPolicy(),
        trust: federation.trust,
        random: RandomSource.seeded(quantizationSeed(siteId, config)),
      });
      clients.set(siteId, client);
      sent.set(siteId, []);
      if (!active(siteId, 'advertise_keys')) continue;
      step(siteId, () => client.advertiseKeys(inbox.roundConfig?.(siteId, config) ?? config));
    }
    const keyList = server.closeAdvertiseKeys();
    for (const entry of keyList.entries) {
      if (!active(entry.siteId, 'nonce_reveal')) continue;
      step(entry.siteId, () => (clients.get(entry.siteId) as SecAggClient).revealNonce(inbox.keyList?.(entry.siteId, keyList) ?? keyList));
    }
    for (const [siteId, message] of server.closeNonceReveal()) {
      if (!active(siteId, 'share_keys')) continue;
      step(siteId, () => (clients.get(siteId) as SecAggClient).shareKeys(inbox.graph?.(siteId, message) ?? message, now));
    }
    for (const [siteId, message] of server.closeShareKeys()) {
      if (!active(siteId, 'masked_input')) continue;
      const client = clients.get(siteId) as SecAggClient;
      step(siteId, () => {
        client.acceptShares(inbox.shareDelivery?.(siteId, message) ?? message);
        const update = updateOf(siteId);
        quantized.set(siteId, quantizedVector(config, siteId, update));
        return client.maskedInput(update);
      });
    }
    const consistencyRequest = server.closeMaskedInput();
    for (const siteId of consistencyRequest.survivors) {
      if (!active(siteId, 'consistency_check')) continue;
      step(siteId, () => (clients.get(siteId) as SecAggClient).consistencyCheck(inbox.consistencyRequest?.(siteId, consistencyRequest) ?? consistencyRequest));
    }
    const unmaskRequest = server.closeConsistencyCheck();
    for (const siteId of consistencyRequest.survivors) {
      if (!active(siteId, 'unmask') || !unmaskRequest.signatures.some((entry) => entry.siteId === siteId)) continue;
      step(siteId, () => (clients.get(siteId) as SecAggClient).unmask(inbox.unmaskRequest?.(siteId, unmaskRequest) ?? unmaskRequest));
    }
    aggregate = server.closeUnmask();
    if (options.commit === true) {
      const request = server.beginCommit({
        previousModelHash: config.modelHash,
        aggregateHash: sha256(new Uint8Array(aggregate.sum.buffer, aggregate.sum.byteOffset, aggregate.sum.byteLength)),
        newModelHash: sha256(utf8('fedgate test model r+1')),
        optimizerStateHash: sha256(utf8('fedgate test optimiser state r+1')),
      });
      for (const siteId of aggregate.maskedSurvivors) {
        if (!active(siteId, 'commit')) continue;
        step(siteId, () => (clients.get(siteId) as SecAggClient).commit(inbox.commitRequest?.(siteId, request) ?? request));
      }
      commitStatus = server.commitStatus();
    }
    return result(undefined);
  } catch (error) {
    if (error instanceof SecAggError && error.code === 'ABORTED') return result(error);
    throw error;
  } finally {
    for (const client of clients.values()) client.dispose();
  }
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
