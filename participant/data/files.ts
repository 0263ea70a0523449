/**
 * File access shared by the loaders: read a whole data file, and transparently decompress gzip. Gzip is
 * recognised by its magic bytes (RFC 1952 Sec. 2.3.1: ID1 = 0x1f, ID2 = 0x8b), not by the file name, so
 * `train-images-idx3-ubyte` and `train-images-idx3-ubyte.gz` both load. Decompression runs on libuv's
 * thread pool (zlib.gunzip), keeping the daemon's event loop free while a 26 MB archive inflates.
 */
import { readFile } from 'node:fs/promises';
import { gunzip } from 'node:zlib';
import { DataError } from './errors.js';

/** Reads a file into memory; a missing or unreadable file is a DataError naming the path. */
export async function readDataFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new DataError('NOT_FOUND', 'FILE_NOT_FOUND', `${path}: no such file; expected a readable data file`, { cause: error });
    }
    throw new DataError('FAILED_PRECONDITION', 'FILE_UNREADABLE', `${path}: cannot be read (${code ?? String(error)})`, { cause: error });
  }
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Returns `bytes` inflated when they are a gzip stream, unchanged otherwise. */
export async function maybeGunzip(bytes: Uint8Array, source: string): Promise<Uint8Array> {
  if (!isGzip(bytes)) return bytes;
  return new Promise((resolve, reject) => {
    gunzip(bytes, (error, result) => {
      if (error === null) {
        resolve(result);
        return;
      }
      const detail = (error as NodeJS.ErrnoException).code === 'Z_BUF_ERROR' ? 'the gzip stream is truncated (unexpected end of file)' : `the gzip stream is corrupt (${error.message})`;
      reject(new DataError('DATA_LOSS', 'GZIP_CORRUPT', `${source}: ${detail}; expected a complete gzip file`, { cause: error }));
    });
  });
}
