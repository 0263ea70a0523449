/**
 * An image-folder site end to end through the site's own data path: a site.yaml with `data.format:
 * table` pointing at a folder of class sub-folders (torchvision's ImageFolder layout) of PNG and JPEG
 * files of assorted sizes, written with sharp in the test. The config is loaded as the daemon loads it
 * (loadSiteConfig), the start-time check reads every image (SiteDataWatch.checkAtStart, before the site
 * would dial anyone), loadSiteData maps the folder onto the task's image input (resized to the task's
 * [channels, height, width], class names from the folder names) and the Trainer trains the zoo CNN on
 * it: the held-out loss falls and the classes (horizontal against vertical stripes) are learnt. A
 * site.yaml without `image_shape` (the task gives the shape) must pass the start-time check, and an
 * unreadable image must fail it naming the file.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSiteConfig } from '../../cli/config/site-config.js';
import { buildTrainingPlan } from '../../model/plan.js';
import type { TaskDocument } from '../../model/task.js';
import { SiteDataInvalidError, SiteDataWatch } from '../../participant/daemon/site-data-check.js';
import { loadSiteData } from '../../participant/daemon/site-data.js';
import { Random, Trainer } from '../../participant/index.js';

const CLASSES = ['columns', 'rows'];
const PER_CLASS = 60;

/** An RGB image of stripes across rows or columns, random period phase and size, with pixel noise. */
async function stripes(kind: string, random: Random, format: 'png' | 'jpeg'): Promise<Buffer> {
  const width = 20 + random.nextInt(20);
  const height = 20 + random.nextInt(20);
  const period = 4 + random.nextInt(3);
  const phase = random.nextInt(period);
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const along = kind === 'rows' ? y : x;
      const on = (along + phase) % period < period / 2;
      for (let c = 0; c < 3; c++) pixels[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round((on ? 200 : 55) + 30 * random.nextNormal())));
    }
  }
  const image = sharp(pixels, { raw: { width, height, channels: 3 } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 90 }).toBuffer();
}

const task: TaskDocument = {
  formatVersion: 1,
  model: { kind: 'cnn', inputShape: [3, 16, 16], classes: CLASSES.length },
  loss: 'cross_entropy',
  input: { shape: [3, 16, 16], dtype: 'float32' },
  normalization: { scale: 2, offset: -1 },
  labels: CLASSES,
  optimizer: { kind: 'sgd', learningRate: 0.05, momentum: 0.9 },
  training: { epochs: 8, batchSize: 16, proximalMu: 0, seed: 3 },
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-image-site-'));
  const random = new Random(7);
  for (const kind of CLASSES) {
    await mkdir(join(dir, 'images', kind), { recursive: true });
    for (let i = 0; i < PER_CLASS; i++) {
      const format = i % 2 === 0 ? 'png' : 'jpeg';
      await writeFile(join(dir, 'images', kind, `${String(i).padStart(3, '0')}.${format === 'png' ? 'png' : 'jpg'}`), await stripes(kind, random, format));
    }
  }
  // What an operator's folder also holds: ignored, never a failure.
  await writeFile(join(dir, 'images', 'README.txt'), 'site images\n');
  await writeFile(join(dir, 'site.yaml'), [
    'coordinator: localhost:7000',
    'tls: { ca: ca.pem, cert: site.pem, key: site.key }',
    'data:',
    '  format: table',
    '  path: images',
    '  test_fraction: 0.25',
    '  split_seed: 2',
    `accepted_tasks: ['${'a'.repeat(64)}']`,
    '',
  ].join('\n'));
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('an image-folder site (site.yaml data.format table)', () => {
  it('passes the start-time check without image_shape, maps the folder onto the task\'s image input and trains: held-out loss falls, stripes learnt', async () => {
    const config = await loadSiteConfig(join(dir, 'site.yaml'));
    expect(config.data).toMatchObject({ format: 'table', path: join(dir, 'images') });
    const watch = new SiteDataWatch({ spec: config.data, intervalMs: 0, reload: async () => {}, logger: pino({ level: 'silent' }) });
    await watch.checkAtStart();

    const { train, test } = await loadSiteData(config.data, task);
    expect(train.count + test.count).toBe(CLASSES.length * PER_CLASS);
    expect(train.exampleShape).toEqual([3, 16, 16]);
    // Pixels in [0, 1] through the task's normalisation (x * 2 - 1).
    expect(Math.min(...train.features)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...train.features)).toBeLessThanOrEqual(1);
    expect(new Set(train.labels)).toEqual(new Set([0, 1]));

    const plan = buildTrainingPlan(task);
    const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1 });
    try {
      const before = await trainer.evaluate(plan.initialParameters, test, { batchSize: 64 });
      const { epochs, batchSize, seed } = task.training;
      const result = await trainer.train(plan.initialParameters, train, { epochs, batchSize, seed, learningRate: task.optimizer.learningRate });
      const after = await trainer.evaluate(result.parameters, test, { batchSize: 64 });
      const loss = (evaluation: typeof before): number => evaluation.lossSum / evaluation.examples;
      const accuracy = (evaluation: typeof before): number => evaluation.correct / evaluation.examples;
      console.log(`image folder site: ${train.count} train / ${test.count} test images; held-out loss ${loss(before).toFixed(3)} -> ${loss(after).toFixed(3)}, accuracy ${accuracy(before).toFixed(3)} -> ${accuracy(after).toFixed(3)}`);
      expect(loss(after)).toBeLessThan(0.5 * loss(before));
      expect(accuracy(after)).toBeGreaterThanOrEqual(0.9);
    } finally {
      await trainer.close();
    }
  }, 120_000);

  it('refuses an unreadable image at start, naming the file', async () => {
    const broken = join(dir, 'images', 'rows', 'broken.png');
    await writeFile(broken, Buffer.from('\x89PNG\r\n\x1a\n this is not an image'));
    try {
      const config = await loadSiteConfig(join(dir, 'site.yaml'));
      const watch = new SiteDataWatch({ spec: config.data, intervalMs: 0, reload: async () => {}, logger: pino({ level: 'silent' }) });
      const refused = watch.checkAtStart();
      await expect(refused).rejects.toThrow(SiteDataInvalidError);
      await expect(refused).rejects.toThrow(`${broken}: not a readable PNG or JPEG image`);
    } finally {
      await rm(broken);
    }
  }, 60_000);
});
