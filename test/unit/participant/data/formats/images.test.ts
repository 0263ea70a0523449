import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readColumnTable, readImageFolder } from '../../../../../participant/data/formats/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-images-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A solid-colour image of the given size, encoded as PNG or JPEG. */
async function solid(rgb: [number, number, number], width: number, height: number, format: 'png' | 'jpeg', alpha = false): Promise<Buffer> {
  const image = sharp({ create: { width, height, channels: alpha ? 4 : 3, background: { r: rgb[0], g: rgb[1], b: rgb[2], alpha: 1 } } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 100 }).toBuffer();
}

async function folder(name: string, files: Record<string, Buffer | string>): Promise<string> {
  const root = join(dir, name);
  for (const [path, data] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), data);
  }
  return root;
}

describe('image folders', () => {
  it('reads one class per sub-folder, sorted, resized to [C, H, W] in [0, 1], channel-first', async () => {
    const root = await folder('ok', {
      'zebra/b.png': await solid([255, 0, 0], 10, 6, 'png'),
      'zebra/a.JPG': await solid([0, 0, 255], 7, 7, 'jpeg'),
      'cat/x.png': await solid([0, 255, 0], 3, 5, 'png', true),
      'cat/notes.txt': 'not an image',
      'README.md': 'licence',
    });
    const table = await readImageFolder(root, { shape: [3, 4, 2] });
    expect(table.rows).toBe(3);
    expect(table.columns.get('label')).toEqual({ kind: 'string', values: ['cat', 'zebra', 'zebra'] });
    const image = table.columns.get('image');
    if (image?.kind !== 'numeric') throw new Error('image column missing');
    expect(image.cellShape).toEqual([3, 4, 2]);
    expect(image.values).toBeInstanceOf(Float32Array);
    const pixel = (row: number, channel: number): number => image.values[row * 24 + channel * 8 + 5] as number;
    // cat/x.png green; zebra/a.JPG blue (JPEG, so nearly); zebra/b.png red.
    expect([pixel(0, 0), pixel(0, 1), pixel(0, 2)]).toEqual([0, 1, 0]);
    expect(pixel(1, 2)).toBeGreaterThan(0.95);
    expect(pixel(1, 0)).toBeLessThan(0.05);
    expect([pixel(2, 0), pixel(2, 1), pixel(2, 2)]).toEqual([1, 0, 0]);
    expect(table.ignored).toEqual([join(root, 'README.md'), join(root, 'cat', 'notes.txt')]);
  });

  it('converts to one grey channel, and readColumnTable picks image folders for a directory', async () => {
    const root = await folder('grey', { 'a/1.png': await solid([255, 255, 255], 4, 4, 'png'), 'b/2.png': await solid([0, 0, 0], 4, 4, 'png') });
    const table = await readColumnTable(root, { imageShape: [1, 2, 2] });
    const image = table.columns.get('image');
    expect(image?.kind === 'numeric' && [...image.values]).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    await expect(readColumnTable(root)).rejects.toThrow(/an image folder needs imageShape/);
  });

  it('a corrupt image is an error naming the file', async () => {
    const good = await solid([1, 2, 3], 4, 4, 'png');
    const root = await folder('corrupt', { 'a/ok.png': good, 'a/broken.png': good.subarray(0, 40), 'b/text.jpg': 'this is not a jpeg' });
    await expect(readImageFolder(root, { shape: [3, 4, 4] })).rejects.toMatchObject({
      reason: 'IMAGE_UNREADABLE',
      message: expect.stringContaining(`${join(root, 'a', 'broken.png')}: not a readable PNG or JPEG image`),
    });
    await rm(join(root, 'a', 'broken.png'));
    await expect(readImageFolder(root, { shape: [3, 4, 4] })).rejects.toThrow(`${join(root, 'b', 'text.jpg')}: not a readable PNG or JPEG image`);
  });

  it.each([
    ['a class folder without images', { 'a/1.png': 'x', 'empty/readme.txt': 'x' }, [3, 2, 2], /class folder "empty" holds no \.png, \.jpg or \.jpeg file/],
    ['no class folders', { 'loose.png': 'x' }, [3, 2, 2], /no class folders; expected one sub-folder of PNG or JPEG images per class/],
    ['two channels', { 'a/1.png': 'x' }, [2, 2, 2], /channels must be 1 \(grey\) or 3 \(RGB\), got 2/],
    ['a zero height', { 'a/1.png': 'x' }, [3, 0, 2], /height must be an integer in \[1, 8192\], got 0/],
  ] as const)('rejects %s', async (name, files, shape, message) => {
    const root = await folder(name.replace(/ /g, '-'), files);
    await expect(readImageFolder(root, { shape })).rejects.toThrow(message);
  });

  it('a missing folder is NOT_FOUND', async () => {
    await expect(readImageFolder(join(dir, 'nope'), { shape: [3, 2, 2] })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
