import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FedgateError, prepareDirectory, readFileIfExists, writeFileAtomic } from '../../../platform/index.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-platform-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<FedgateError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(FedgateError);
  return error as FedgateError;
}

describe('writeFileAtomic', () => {
  it('replaces the file and leaves no temporary behind', async () => {
    const path = join(directory, 'a.json');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, 'two');
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(await readdir(directory)).toEqual(['a.json']);
  });

  it('applies the requested mode', async () => {
    const path = join(directory, 'secret');
    await writeFileAtomic(path, 'x', { mode: 0o600 });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await writeFileAtomic(path, 'y', { mode: 0o644 });
    expect((await stat(path)).mode & 0o777).toBe(0o644);
  });

  it('writes complete files: a reader never sees a torn or mixed one, even while writes go on', async () => {
    const path = join(directory, 'model.bin');
    const small = Buffer.alloc(1 << 20, 0x61);
    const large = Buffer.alloc(3 << 20, 0x62);
    await writeFileAtomic(path, small);
    let writing = true;
    const writer = (async () => {
      for (let index = 0; index < 8; index += 1) await writeFileAtomic(path, index % 2 === 0 ? large : small);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const bytes = await readFile(path);
      expect(bytes.equals(small) || bytes.equals(large)).toBe(true);
      reads += 1;
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
    expect((await readFile(path)).equals(small)).toBe(true);
    expect(await readdir(directory)).toEqual(['model.bin']);
  });

  it('leaves the old file intact and no temporary behind when it fails before the rename', async () => {
    const path = join(directory, 'ledger.json');
    await writeFileAtomic(path, 'old');
    const hookError = new Error('crash point reached');
    await expect(
      writeFileAtomic(path, 'new', {
        beforeRename: () => {
          throw hookError;
        },
      }),
    ).rejects.toBe(hookError);
    expect(await readFile(path, 'utf8')).toBe('old');
    expect(await readdir(directory)).toEqual(['ledger.json']);
  });

  it('reports a failed rename as IO_FAILED naming the path, keeps the target and removes its temporary', async () => {
    const target = join(directory, 'occupied');
    await mkdir(target);
    await writeFile(join(target, 'inside'), 'kept');
    const error = await rejection(writeFileAtomic(target, 'data'));
    expect([error.code, error.reason]).toEqual(['INTERNAL', 'IO_FAILED']);
    expect(error.message).toContain(target);
    expect(await readFile(join(target, 'inside'), 'utf8')).toBe('kept');
    expect(await readdir(directory)).toEqual(['occupied']);
  });

  it('reports a directory that does not exist as IO_FAILED naming the path', async () => {
    const path = join(directory, 'missing', 'file');
    const error = await rejection(writeFileAtomic(path, 'data'));
    expect([error.code, error.reason]).toEqual(['INTERNAL', 'IO_FAILED']);
    expect(error.message).toContain(join(directory, 'missing'));
  });
});

describe('prepareDirectory and readFileIfExists', () => {
  it('creates the directory, removes what a crashed writer left behind and keeps everything else', async () => {
    const state = join(directory, 'state');
    await prepareDirectory(state);
    await writeFile(join(state, 'kept.json'), '{}');
    await writeFile(join(state, 'kept.json.tmp-123-abcdef'), '{"par');
    await prepareDirectory(state);
    expect(await readdir(state)).toEqual(['kept.json']);
  });

  it('reads a file, or undefined when there is none', async () => {
    const path = join(directory, 'counter');
    expect(await readFileIfExists(path)).toBeUndefined();
    await writeFileAtomic(path, 'x');
    expect((await readFileIfExists(path))?.toString()).toBe('x');
  });
});
