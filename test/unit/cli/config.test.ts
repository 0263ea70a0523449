import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  checkSiteDataFiles,
  compileCoordinatorConfig,
  compileSiteConfig,
  loadCoordinatorConfig,
  parseConfigText,
  parseDurationMs,
  parseSizeBytes,
} from '../../../cli/config/index.js';
import { sitePolicy } from '../../../cli/config/site-config.js';

const TASK_HASH = 'a'.repeat(64);
const baseCoordinator = {
  federation_id: 'demo',
  tls: { ca: 'ca.pem', cert: 'c.pem', key: 'c.key.pem' },
  task: 'task.yaml',
  rounds: 3,
};
const baseSite = {
  coordinator: '127.0.0.1:7443',
  tls: { ca: 'ca.pem', cert: 's.pem', key: 's.key.pem' },
  data: { format: 'digits' },
  accepted_tasks: [TASK_HASH],
};

describe('units', () => {
  it.each([
    ['30s', 30_000], ['5m', 300_000], ['250ms', 250], ['1h', 3_600_000], [2, 2000], ['1.5s', 1500],
  ] as const)('duration %s', (text, ms) => expect(parseDurationMs(text)).toBe(ms));
  it.each(['30', 'soon', '-1s', '5 minutes'])('rejects duration %s', (text) => expect(parseDurationMs(text)).toBeUndefined());
  it.each([['64MiB', 64 * 1024 ** 2], ['1GiB', 1024 ** 3], ['512KB', 512_000], [100, 100]] as const)('size %s', (text, bytes) => expect(parseSizeBytes(text)).toBe(bytes));
  it('rejects a bad size', () => expect(parseSizeBytes('lots')).toBeUndefined());
});

describe('coordinator.yaml', () => {
  it('applies documented defaults and resolves paths against the config directory', () => {
    const config = compileCoordinatorConfig(baseCoordinator, 'coordinator.yaml', '/etc/fedgate');
    expect(config.tls.ca).toBe('/etc/fedgate/ca.pem');
    expect(config.coordinator.stateDirectory).toBe('/etc/fedgate/state');
    expect(config.coordinator.deadlines).toEqual({ advertiseKeysMs: 30_000, shareKeysMs: 30_000, maskedInputMs: 600_000, consistencyCheckMs: 30_000, unmaskMs: 30_000, commitMs: 30_000 });
    expect(config.coordinator.secureAggregation).toBe(true);
    expect(config.coordinator.participants.minimum).toBe(3);
  });

  it.each([
    [{ ...baseCoordinator, rounds: 0 }, /rounds: .*(too small|>0|positive)/i],
    [{ ...baseCoordinator, rounds: 'ten' }, /rounds: .*expected number.*got "ten"/],
    [{ ...baseCoordinator, roundz: 3 }, /roundz|Unrecognized key/],
    [{ ...baseCoordinator, listen: 'localhost' }, /listen: expected host:port/],
    [{ ...baseCoordinator, deadlines: { unmask: 'soon' } }, /deadlines\.unmask: expected a positive duration.*"soon"/],
    [{ ...baseCoordinator, deadlines: { masked_input: '25h' } }, /deadlines\.masked_input: expected a whole number of milliseconds up to 24h/],
    [{ ...baseCoordinator, deadlines: { commit: 0.0005 } }, /deadlines\.commit: expected a whole number of milliseconds/],
    [{ ...baseCoordinator, secagg: { degree: 3 } }, /secagg\.degree: must be even/],
    [{ ...baseCoordinator, federation_id: 'has space' }, /federation_id/],
    [{ ...baseCoordinator, tls: { ca: 'ca.pem' } }, /tls\.cert/],
  ])('rejects bad input %#, naming the key', (value, message) => {
    expect(() => compileCoordinatorConfig(value, 'coordinator.yaml', '/x')).toThrow(ConfigError);
    expect(() => compileCoordinatorConfig(value, 'coordinator.yaml', '/x')).toThrow(message);
  });

  it('reports every problem at once', () => {
    try {
      compileCoordinatorConfig({ tls: {} }, 'c.yaml', '/x');
      expect.unreachable();
    } catch (error) {
      const message = (error as Error).message;
      for (const key of ['federation_id', 'tls.ca', 'task', 'rounds']) expect(message).toContain(key);
    }
  });
});

describe('site.yaml', () => {
  it('checks at start that the data files it names can be read', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'fedgate-site-data-'));
    try {
      await writeFile(join(directory, 'images.idx'), 'x');
      const idx = compileSiteConfig({ ...baseSite, data: { format: 'idx', images: 'images.idx', labels: 'labels.idx' } }, 'site.yaml', directory);
      const error = await checkSiteDataFiles(idx).then(() => undefined, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain(`data.labels: cannot read ${join(directory, 'labels.idx')} (no such file)`);
      expect((error as Error).message).not.toContain('data.images');
      await writeFile(join(directory, 'labels.idx'), 'y');
      await expect(checkSiteDataFiles(idx)).resolves.toBeUndefined();
      const csv = compileSiteConfig({ ...baseSite, data: { format: 'csv', path: '.', label_column: 0 } }, 'site.yaml', directory);
      await expect(checkSiteDataFiles(csv)).rejects.toThrow(/data\.path: .* is not a file/);
      await expect(checkSiteDataFiles(compileSiteConfig(baseSite, 'site.yaml', directory))).resolves.toBeUndefined();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('refuses half a pair of held-out test files, naming the missing one, and takes both or neither', () => {
    const idx = (extra: Record<string, string>): unknown => ({ ...baseSite, data: { format: 'idx', images: 'images.idx', labels: 'labels.idx', ...extra } });
    expect(() => compileSiteConfig(idx({ test_images: 'test-images.idx' }), 'site.yaml', '/site')).toThrow(
      /data\.test_labels: test_images is set but test_labels is not: give both files of the held-out test split, or neither/,
    );
    expect(() => compileSiteConfig(idx({ test_labels: 'test-labels.idx' }), 'site.yaml', '/site')).toThrow(/data\.test_images: test_labels is set but test_images is not/);
    const both = compileSiteConfig(idx({ test_images: 'test-images.idx', test_labels: 'test-labels.idx' }), 'site.yaml', '/site');
    expect(both.data).toMatchObject({ test_images: '/site/test-images.idx', test_labels: '/site/test-labels.idx' });
    expect(compileSiteConfig(idx({}), 'site.yaml', '/site').data).not.toHaveProperty('test_images');
  });

  it('pins a federation id when given one, and refuses a malformed one', () => {
    expect(compileSiteConfig(baseSite, 'site.yaml', '/site').federation_id).toBeUndefined();
    expect(compileSiteConfig({ ...baseSite, federation_id: 'hospital-net' }, 'site.yaml', '/site').federation_id).toBe('hospital-net');
    expect(() => compileSiteConfig({ ...baseSite, federation_id: 'has space' }, 'site.yaml', '/site')).toThrow(/federation_id: expected 1-63 letters/);
  });

  it('compiles with a safe default policy', () => {
    const config = compileSiteConfig(baseSite, 'site.yaml', '/site');
    expect(config.policy).toEqual({
      min_participants: 3,
      min_threshold: 3,
      allow_plaintext: false,
      min_tolerated_colluders: 1,
      min_neighbour_degree: 40,
      complete_graph_up_to: 100,
    });
    expect(config.device).toBe('auto');
    expect(config.intra_op_threads).toBe(1);
    expect(config.tls.key).toBe('/site/s.key.pem');
  });

  it.each([
    [{ ...baseSite, accepted_tasks: [] }, /accepted_tasks: pin at least one task hash/],
    [{ ...baseSite, accepted_tasks: ['abc'] }, /accepted_tasks\.0: expected a task hash/],
    [{ ...baseSite, device: 'gpu' }, /device: expected auto, cpu, cuda or cuda:N/],
    [{ ...baseSite, data: { format: 'parquet' } }, /data\.format/],
    [{ ...baseSite, data: { format: 'csv' } }, /data\.path/],
    [{ ...baseSite, data: { format: 'digits', partition: { kind: 'iid', count: 3, index: 3 } } }, /data\.partition\.index: index must be smaller than count/],
    [{ ...baseSite, max_model_bytes: 'huge' }, /max_model_bytes: expected a positive size/],
    [{ ...baseSite, policy: { min_tolerated_colluders: -1 } }, /policy\.min_tolerated_colluders/],
    [{ ...baseSite, policy: { min_neighbour_degree: 0 } }, /policy\.min_neighbour_degree/],
    [{ ...baseSite, policy: { complete_graph_up_to: 2.5 } }, /policy\.complete_graph_up_to/],
  ])('rejects bad input %#, naming the key', (value, message) => {
    expect(() => compileSiteConfig(value, 'site.yaml', '/x')).toThrow(message);
  });

  it('hands the collusion margin keys to the policy the site enforces', () => {
    const defaults = sitePolicy(compileSiteConfig(baseSite, 'site.yaml', '/site'));
    expect(defaults).toMatchObject({ minThreshold: 3, minToleratedColluders: 1, minNeighbourDegree: 40, completeGraphUpTo: 100, allowPlaintext: false });
    expect(defaults.pinnedTaskHashes.map((hash) => Buffer.from(hash).toString('hex'))).toEqual([TASK_HASH]);
    const lowered = sitePolicy(
      compileSiteConfig({ ...baseSite, policy: { min_tolerated_colluders: 0, min_neighbour_degree: 8, complete_graph_up_to: 0, min_threshold: 2 } }, 'site.yaml', '/site'),
    );
    expect(lowered).toMatchObject({ minThreshold: 2, minToleratedColluders: 0, minNeighbourDegree: 8, completeGraphUpTo: 0 });
  });
});

describe('config files', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'fedgate-config-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('a missing file says so and names the flag', async () => {
    await expect(loadCoordinatorConfig(join(directory, 'nope.yaml'))).rejects.toThrow(/nope\.yaml: the file does not exist: check the --config path/);
  });

  it('invalid YAML and duplicate keys are errors naming the file', async () => {
    expect(() => parseConfigText('a: [1, 2', 'x.yaml')).toThrow(/x\.yaml: not valid YAML/);
    expect(() => parseConfigText('a: 1\na: 2\n', 'x.yaml')).toThrow(/x\.yaml: not valid YAML/);
  });

  it('loads a file and resolves relative paths against its directory', async () => {
    const path = join(directory, 'coordinator.yaml');
    await writeFile(path, 'federation_id: demo\ntls: {ca: ca.pem, cert: c.pem, key: c.key}\ntask: task.yaml\nrounds: 2\n');
    const config = await loadCoordinatorConfig(path);
    expect(config.taskPath).toBe(join(directory, 'task.yaml'));
  });
});
