/**
 * SiteDataWatch (participant/daemon/site-data-check.ts) on a real CSV file: the site takes part in rounds
 * only while its data checks out. A file that turns invalid while the site runs makes it sit rounds out
 * with SITE_DATA_INVALID (the detail stays in its log); a valid file again lets it back in; a change is
 * read only once it held still for one interval (never a half-written file), and read once, not at every
 * poll. The polling interval is faked: each tick is one poll, awaited to its end.
 */
import { appendFile, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { SiteDataInvalidError, SiteDataWatch, siteDataFiles, type SiteDataWatchOptions } from '../../../../participant/daemon/site-data-check.js';
import type { SiteDataSpec } from '../../../../participant/daemon/site-data.js';
import { refusalFor, type SiteRefusal } from '../../../../participant/round/refusal.js';

const INTERVAL_MS = 1000;
const VALID = 'a,b,label\n1,2,0\n3,4,1\n';
/** A feature cell that is no number: the structure check refuses it, naming row and column. */
const INVALID = 'a,b,label\n1,2,0\n3,oops,1\n';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-site-data-watch-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
});
afterEach(() => {
  vi.useRealTimers();
});

let files = 0;
async function csvFile(text: string): Promise<{ path: string; spec: SiteDataSpec }> {
  const path = join(dir, `data-${files++}.csv`);
  await writeFile(path, text);
  return { path, spec: { format: 'csv', path, label_column: 'label', header: 'auto', test_fraction: 0.25, split_seed: 1 } };
}

interface Watched {
  readonly watch: SiteDataWatch;
  readonly reloads: { count: number };
  readonly logged: { level: string; fields: Record<string, unknown>; message: string }[];
  /** One poll, awaited until it has checked (and rechecked) the files. */
  tick(): Promise<void>;
}

function watched(spec: SiteDataSpec, reload: () => Promise<void> = async () => {}): Watched {
  const reloads = { count: 0 };
  const logged: Watched['logged'] = [];
  const record = (level: string) => (fields: Record<string, unknown>, message: string) => logged.push({ level, fields, message });
  const logger = { info: record('info'), warn: record('warn'), error: record('error') } as unknown as SiteDataWatchOptions['logger'];
  const watch = new SiteDataWatch({
    spec,
    intervalMs: INTERVAL_MS,
    reload: async () => {
      reloads.count++;
      await reload();
    },
    logger,
  });
  const tick = async (): Promise<void> => {
    vi.advanceTimersByTime(INTERVAL_MS);
    // The poll runs on real file I/O; it is over when the watch is no longer checking.
    await vi.waitFor(() => expect(Reflect.get(watch, 'checking')).toBe(false), { timeout: 10_000, interval: 5 });
  };
  return { watch, reloads, logged, tick };
}

/** What the site would tell the coordinator about the round it refuses now. */
function refusalOf(watch: SiteDataWatch): SiteRefusal {
  try {
    watch.assertUsable();
  } catch (error) {
    return refusalFor(error);
  }
  throw new Error('the watch let the site take part');
}

describe('SiteDataWatch', () => {
  it('refuses rounds while a changed file is invalid, with the code alone, and lets the site back in once it is fixed', async () => {
    const { path, spec } = await csvFile(VALID);
    const { watch, reloads, logged, tick } = watched(spec);
    await watch.checkAtStart();
    watch.start();
    expect(watch.usable).toBe(true);
    expect(() => watch.assertUsable()).not.toThrow();

    await writeFile(path, INVALID);
    await tick();
    await tick();
    expect(watch.usable).toBe(false);
    // The structure check failed: the task's reload is never reached with a bad file.
    expect(reloads.count).toBe(0);
    expect(() => watch.assertUsable()).toThrow(expect.objectContaining({ reason: 'SITE_DATA_INVALID' }));
    // What goes to the coordinator: the reason code and its fixed text, no path, row or value.
    const refusal = refusalOf(watch);
    expect(refusal.reason).toBe('SITE_DATA_INVALID');
    expect(refusal.message).not.toMatch(/oops|data-\d+\.csv|row/);
    // What stays in the site's log: the detail and the file.
    expect(logged.find((entry) => entry.level === 'error')?.fields).toMatchObject({ reason: 'SITE_DATA_INVALID', detail: expect.stringContaining('oops'), files: [path] });

    await writeFile(path, `${VALID}5,6,1\n`);
    await tick();
    await tick();
    expect(watch.usable).toBe(true);
    expect(() => watch.assertUsable()).not.toThrow();
    expect(reloads.count).toBe(1);
    expect(logged.at(-1)).toMatchObject({ level: 'info', fields: { files: [path], wasUsable: false }, message: expect.stringContaining('valid again') });
    watch.stop();
  });

  it('reads a change only once it held still for one interval, and only once', async () => {
    const { path, spec } = await csvFile(VALID);
    const { watch, reloads, logged, tick } = watched(spec);
    await watch.checkAtStart();
    watch.start();
    // Nothing changed: polls read nothing.
    await tick();
    await tick();
    expect(reloads.count).toBe(0);
    // A file still being written (it grows at every poll) is not read.
    for (let poll = 0; poll < 3; poll++) {
      await appendFile(path, `${poll},${poll},0\n`);
      await tick();
      expect(reloads.count).toBe(0);
    }
    // Held still for one interval: read, once.
    await tick();
    expect(reloads.count).toBe(1);
    expect(logged.at(-1)).toMatchObject({ level: 'info', fields: { wasUsable: true }, message: expect.stringContaining('next rounds use the new data') });
    await tick();
    await tick();
    expect(reloads.count).toBe(1);
    watch.stop();
  });

  it('runs one poll at a time: a poll due while another still reads the files is skipped, so a change is still read only once it held still', async () => {
    const { path, spec } = await csvFile(VALID);
    const { watch, reloads, tick } = watched(spec);
    await watch.checkAtStart();
    watch.start();
    await writeFile(path, `${VALID}5,6,1\n`);
    // Two polls due at once (an event loop that was blocked): the second finds the first still reading.
    vi.advanceTimersByTime(2 * INTERVAL_MS);
    await vi.waitFor(() => expect(Reflect.get(watch, 'checking')).toBe(false), { timeout: 10_000, interval: 5 });
    // Give a second, concurrent poll (if one ran) the time to read the file.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reloads.count).toBe(0);
    await tick();
    expect(reloads.count).toBe(1);
    watch.stop();
  });

  it('a changed file that no longer fits the task (the reload fails) also makes the site sit rounds out', async () => {
    const { path, spec } = await csvFile(VALID);
    let fits = true;
    const { watch, reloads, tick } = watched(spec, async () => {
      if (!fits) throw new Error('label 7 is outside the task classes');
    });
    await watch.checkAtStart();
    watch.start();
    fits = false;
    await writeFile(path, 'a,b,label\n1,2,7\n');
    await tick();
    await tick();
    expect(reloads.count).toBe(1);
    expect(watch.usable).toBe(false);
    expect(() => watch.assertUsable()).toThrow(/label 7 is outside the task classes/);
    watch.stop();
  });

  it('a file removed while the site runs makes it sit rounds out too', async () => {
    const { path, spec } = await csvFile(VALID);
    const { watch, tick } = watched(spec);
    await watch.checkAtStart();
    watch.start();
    await unlink(path);
    await tick();
    await tick();
    expect(watch.usable).toBe(false);
    watch.stop();
  });

  it('markInvalid (the data did not fit a task when it was prepared) refuses rounds until a change checks out', async () => {
    const { path, spec } = await csvFile(VALID);
    const { watch, tick } = watched(spec);
    await watch.checkAtStart();
    watch.start();
    watch.markInvalid(new Error('3 features, the task expects 4'));
    expect(watch.usable).toBe(false);
    expect(() => watch.assertUsable()).toThrow(expect.objectContaining({ reason: 'SITE_DATA_INVALID', message: expect.stringContaining('3 features, the task expects 4') }));
    watch.markInvalid('not an Error');
    expect(() => watch.assertUsable()).toThrow(/not an Error/);
    await writeFile(path, `${VALID}5,6,0\n`);
    await tick();
    await tick();
    expect(watch.usable).toBe(true);
    watch.stop();
  });

  it('does not poll once stopped, with interval 0, or without files (digits)', async () => {
    const { path, spec } = await csvFile(VALID);
    const stopped = watched(spec);
    await stopped.watch.checkAtStart();
    stopped.watch.start();
    stopped.watch.stop();
    const never = new SiteDataWatch({ spec, intervalMs: 0, reload: async () => {}, logger: pino({ level: 'silent' }) });
    await never.checkAtStart();
    never.start();
    const digits = new SiteDataWatch({ spec: { format: 'digits', test_fraction: 0.2, split_seed: 1 }, intervalMs: INTERVAL_MS, reload: async () => {}, logger: pino({ level: 'silent' }) });
    digits.start();
    expect(vi.getTimerCount()).toBe(0);
    await writeFile(path, INVALID);
    await stopped.tick();
    await stopped.tick();
    expect(stopped.watch.usable).toBe(true);
    expect(never.usable).toBe(true);
  });

  it('starts polling once, however often start is called', async () => {
    const { spec } = await csvFile(VALID);
    const { watch } = watched(spec);
    watch.start();
    watch.start();
    expect(vi.getTimerCount()).toBe(1);
    watch.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses an invalid file at start with SiteDataInvalidError naming row and column', async () => {
    const { spec } = await csvFile(INVALID);
    const { watch } = watched(spec);
    const failure = await watch.checkAtStart().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(SiteDataInvalidError);
    expect(failure).toMatchObject({ reason: 'SITE_DATA_INVALID', message: expect.stringMatching(/row 3, column 2.*nothing was sent to the coordinator/) });
  });
});

describe('siteDataFiles', () => {
  it('lists every file the spec names, with its site.yaml key', () => {
    expect(siteDataFiles({ format: 'idx', images: '/i', labels: '/l', test_images: '/ti', test_labels: '/tl', test_fraction: 0, split_seed: 1 })).toEqual([
      { key: 'data.images', path: '/i' },
      { key: 'data.labels', path: '/l' },
      { key: 'data.test_images', path: '/ti' },
      { key: 'data.test_labels', path: '/tl' },
    ]);
    expect(siteDataFiles({ format: 'idx', images: '/i', labels: '/l', test_fraction: 0.2, split_seed: 1 })).toHaveLength(2);
    expect(siteDataFiles({ format: 'table', path: '/p', test_path: '/t', header: 'auto', test_fraction: 0, split_seed: 1 })).toEqual([
      { key: 'data.path', path: '/p' },
      { key: 'data.test_path', path: '/t' },
    ]);
    expect(siteDataFiles({ format: 'table', path: '/p', header: 'auto', test_fraction: 0.2, split_seed: 1 })).toEqual([{ key: 'data.path', path: '/p' }]);
    expect(siteDataFiles({ format: 'csv', path: '/c', label_column: 0, header: 'no', test_fraction: 0.2, split_seed: 1 })).toEqual([{ key: 'data.path', path: '/c' }]);
  });
});
