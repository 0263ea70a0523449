/**
 * The global models as operators download them: inference ONNX exported from the stored weights
 * (model/export.ts). The export is deterministic, so the ONNX SHA-256 of a model is a fact that can be
 * reported before anyone downloads it (GetStatus, ListRounds) and that GetModel's trailer then matches.
 *
 * Only the digests are kept on disk (`onnx-exports.json` in the state directory, model_hash -> ONNX
 * SHA-256): storing every round's ONNX bytes would double the state directory, and re-exporting a model
 * costs far less than the round that produced it. The last exported bytes stay in memory, because
 * operators tend to fetch the model they just saw reported.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { readFileIfExists, writeFileAtomic } from '../../platform/index.js';
import { sha256Hex } from '../../crypto/hash.js';
import type { ModelStore } from '../state/model-store.js';
import { StateError } from '../state/state-error.js';

export const ONNX_EXPORTS_FORMAT_VERSION = 1;
export const ONNX_EXPORTS_FILE_NAME = 'onnx-exports.json';
const HEX_HASH = /^[0-9a-f]{64}$/;

const fileSchema = z.strictObject({
  formatVersion: z.literal(ONNX_EXPORTS_FORMAT_VERSION),
  onnxSha256: z.record(z.string().regex(HEX_HASH), z.string().regex(HEX_HASH)),
});

export interface ExportedOnnx {
  readonly bytes: Uint8Array;
  /** Hex SHA-256 of `bytes`. */
  readonly sha256: string;
}

export class ModelExports {
  private readonly digests: Map<string, string>;
  private readonly pending = new Map<string, Promise<ExportedOnnx>>();
  private lastExport: { modelHash: string; onnx: ExportedOnnx } | undefined;
  private persisting: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly store: ModelStore,
    private readonly exportOnnx: (weights: Uint8Array) => Uint8Array,
    digests: Record<string, string>,
  ) {
    this.digests = new Map(Object.entries(digests));
  }

  /**
   * @param exportOnnx turns stored weights (model/weight-codec.ts encoding) into inference ONNX bytes.
   */
  static async open(stateDirectory: string, store: ModelStore, exportOnnx: (weights: Uint8Array) => Uint8Array): Promise<ModelExports> {
    const path = join(stateDirectory, ONNX_EXPORTS_FILE_NAME);
    const raw = await readFileIfExists(path);
    let digests: Record<string, string> = {};
    if (raw !== undefined) {
      try {
        digests = fileSchema.parse(JSON.parse(raw.toString('utf8'))).onnxSha256;
      } catch (error) {
        // Only a cache: a damaged file is rebuilt from the models, never trusted.
        throw new StateError('CORRUPT', `${path} is not a fedgate ONNX export index (format version ${ONNX_EXPORTS_FORMAT_VERSION}); delete it and it is rebuilt from the stored models`, { cause: error });
      }
    }
    return new ModelExports(path, store, exportOnnx, digests);
  }

  /** The ONNX SHA-256 (hex) of the model with `modelHash`, exporting it once if it is not known yet. */
  async onnxSha256(modelHash: string): Promise<string> {
    return this.digests.get(modelHash) ?? (await this.export(modelHash)).sha256;
  }

  /** The ONNX SHA-256 if it has been computed before (no export). */
  knownOnnxSha256(modelHash: string): string | undefined {
    return this.digests.get(modelHash);
  }

  /** The model_hash whose export has this ONNX SHA-256, among those computed so far. */
  modelHashOfOnnx(onnxSha256: string): string | undefined {
    for (const [modelHash, digest] of this.digests) if (digest === onnxSha256) return modelHash;
    return undefined;
  }

  /** Exports the model with `modelHash` (StateError NOT_FOUND when the store lacks it). */
  export(modelHash: string): Promise<ExportedOnnx> {
    if (this.lastExport?.modelHash === modelHash) return Promise.resolve(this.lastExport.onnx);
    let running = this.pending.get(modelHash);
    if (running === undefined) {
      running = this.exportNow(modelHash).finally(() => this.pending.delete(modelHash));
      this.pending.set(modelHash, running);
    }
    return running;
  }

  private async exportNow(modelHash: string): Promise<ExportedOnnx> {
    const bytes = this.exportOnnx(await this.store.get(modelHash));
    const onnx = { bytes, sha256: sha256Hex(bytes) };
    const known = this.digests.get(modelHash);
    if (known !== undefined && known !== onnx.sha256) {
      // A different export of the same weights would make reported hashes lie: fail loudly.
      throw new StateError('CORRUPT', `the ONNX export of model ${modelHash} hashes to ${onnx.sha256}, but ${this.path} recorded ${known}: the export is no longer deterministic or the index was edited`);
    }
    this.lastExport = { modelHash, onnx };
    if (known === undefined) {
      this.digests.set(modelHash, onnx.sha256);
      await this.persist();
    }
    return onnx;
  }

  /** Rewrites the index; writes are chained so a slow one never overtakes a newer one. */
  private persist(): Promise<void> {
    const write = this.persisting.then(() =>
      writeFileAtomic(this.path, `${JSON.stringify({ formatVersion: ONNX_EXPORTS_FORMAT_VERSION, onnxSha256: Object.fromEntries(this.digests) }, null, 1)}\n`),
    );
    this.persisting = write.catch(() => undefined);
    return write;
  }
}
