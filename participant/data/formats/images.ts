/**
 * Image folders, the layout of torchvision's ImageFolder: one sub-folder per class, PNG and JPEG files
 * inside. sharp decodes each image, converts it to grey or sRGB, and resizes it to the task's
 * [channels, height, width] by stretching (as torchvision's Resize((h, w)) does); values are scaled
 * from 0..255 to [0, 1] and stored channel-first, the layout ONNX models take.
 *
 * The table has two columns: 'image' (float32, cellShape [C, H, W]) and 'label' (the class folder's
 * name). Order is deterministic: class folders, then files, sorted by code unit. Files at the top level
 * and files without a .png/.jpg/.jpeg extension (README, .DS_Store, Thumbs.db) are ignored, as are
 * nested folders; they are listed in the table's `ignored` list so an operator can see them.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { DataError, invalidOption, quoteValue } from '../errors.js';
import type { ColumnTable } from '../table.js';

export interface ImageFolderOptions {
  /** [channels, height, width] of every image after conversion; channels 1 (grey) or 3 (RGB). */
  readonly shape: readonly [number, number, number];
}

export interface ImageFolderTable extends ColumnTable {
  /** Paths that were skipped because they are not images inside a class folder. */
  readonly ignored: readonly string[];
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

async function listFolder(path: string, what: string): Promise<import('node:fs').Dirent[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).sort((a, b) => byCodeUnit(a.name, b.name));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError('NOT_FOUND', 'FILE_NOT_FOUND', `${path}: no such folder; expected ${what}`, { cause: error });
    if (code === 'ENOTDIR') throw new DataError('INVALID_ARGUMENT', 'IMAGE_FOLDER_INVALID', `${path}: is a file; expected ${what}`, { cause: error });
    throw new DataError('FAILED_PRECONDITION', 'FILE_UNREADABLE', `${path}: cannot be read (${code ?? String(error)})`, { cause: error });
  }
}

export async function readImageFolder(root: string, options: ImageFolderOptions): Promise<ImageFolderTable> {
  const [channels, height, width] = options.shape;
  if (channels !== 1 && channels !== 3) throw invalidOption('INVALID_OPTION', `image shape [${options.shape.join(', ')}]: channels must be 1 (grey) or 3 (RGB), got ${String(channels)}`);
  for (const [name, size] of [['height', height], ['width', width]] as const) {
    if (!Number.isInteger(size) || size < 1 || size > 8192) throw invalidOption('INVALID_OPTION', `image shape [${options.shape.join(', ')}]: ${name} must be an integer in [1, 8192], got ${String(size)}`);
  }

  const ignored: string[] = [];
  const files: { path: string; label: string }[] = [];
  for (const entry of await listFolder(root, 'a folder with one sub-folder of images per class')) {
    const classPath = join(root, entry.name);
    if (!entry.isDirectory() || entry.name.startsWith('.')) {
      ignored.push(classPath);
      continue;
    }
    let images = 0;
    for (const file of await listFolder(classPath, 'a class folder of images')) {
      const path = join(classPath, file.name);
      if (file.isFile() && IMAGE_EXTENSIONS.has(extname(file.name).toLowerCase()) && !file.name.startsWith('.')) {
        files.push({ path, label: entry.name });
        images++;
      } else {
        ignored.push(path);
      }
    }
    if (images === 0) {
      throw new DataError('INVALID_ARGUMENT', 'IMAGE_FOLDER_INVALID', `${classPath}: class folder ${quoteValue(entry.name)} holds no .png, .jpg or .jpeg file; expected at least one image per class (or remove the folder)`);
    }
  }
  if (files.length === 0) {
    throw new DataError('INVALID_ARGUMENT', 'IMAGE_FOLDER_INVALID', `${root}: no class folders; expected one sub-folder of PNG or JPEG images per class`);
  }

  const cell = channels * height * width;
  const values = new Float32Array(files.length * cell);
  // One image at a time: sharp decodes on libuv's thread pool, and the daemon shares it with gRPC and zlib.
  for (let row = 0; row < files.length; row++) {
    const { path } = files[row] as { path: string };
    writeChannelFirst(await decodeImage(path, channels, height, width), values, row * cell, channels, height * width);
  }
  return {
    source: root,
    rows: files.length,
    columns: new Map([
      ['image', { kind: 'numeric', values, cellShape: [channels, height, width], integer: false }],
      ['label', { kind: 'string', values: files.map((file) => file.label) }],
    ]),
    ignored,
  };
}

/** Decodes, converts and resizes one image to interleaved (HWC) 8-bit pixels. */
async function decodeImage(path: string, channels: 1 | 3, height: number, width: number): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new DataError('FAILED_PRECONDITION', 'FILE_UNREADABLE', `${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error' })
      .removeAlpha()
      .toColourspace(channels === 1 ? 'b-w' : 'srgb')
      .resize(width, height, { fit: 'fill' })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== channels || data.length !== channels * height * width) {
      throw new Error(`decoded to ${info.channels} channels of ${info.width}x${info.height}, not ${channels} of ${width}x${height}`);
    }
    return data;
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new DataError('INVALID_ARGUMENT', 'IMAGE_UNREADABLE', `${path}: not a readable PNG or JPEG image (${detail}); expected an intact image file`, { cause: error });
  }
}

function writeChannelFirst(pixels: Uint8Array, out: Float32Array, offset: number, channels: number, plane: number): void {
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < channels; c++) out[offset + c * plane + p] = (pixels[p * channels + c] as number) / 255;
  }
}
