/**
 * `fedgate export --state DIR`: a committed model as ONNX from a coordinator's state directory (or a
 * copy of it), with no coordinator running and no operator certificate. The model is checked against
 * the directory's ledger before it is written (coordinator/federation/model-export.ts); with --ca (and
 * --crl) the whole ledger is verified as `fedgate verify` does.
 */
import { readFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { verifyCertificateRevocationList } from '../../certs/index.js';
import { exportCommittedModel } from '../../coordinator/index.js';
import { writeFileAtomic } from '../../platform/index.js';
import { ConfigError } from '../config/config-error.js';
import type { Output } from '../output.js';
import { UsageError } from '../usage-error.js';

export interface OfflineExportFlags {
  readonly state: string;
  readonly out: string;
  readonly round?: number;
  readonly ca?: string;
  readonly crl?: string;
}

export async function exportFromStateDirectory(flags: OfflineExportFlags, output: Output): Promise<void> {
  if (flags.crl !== undefined && flags.ca === undefined) throw new UsageError('--crl needs --ca: the CRL is checked against the federation CA, and both verify the ledger\'s signatures');
  const caPem = flags.ca === undefined ? undefined : await readPem(flags.ca, '--ca');
  const revocations =
    flags.crl === undefined || caPem === undefined
      ? []
      : // An expired CRL still tells what was revoked when (as for `fedgate verify`).
        verifyCertificateRevocationList(await readPem(flags.crl, '--crl'), caPem, { checkFreshness: false }).entries.map((entry) => ({ serial: entry.serial, revokedAt: entry.revokedAt }));
  const state = resolve(flags.state);
  const exported = await exportCommittedModel(state, {
    ...(flags.round === undefined ? {} : { round: flags.round }),
    ...(caPem === undefined ? {} : { caPem, revocations }),
  });
  const path = resolve(flags.out);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, exported.onnx);
  const checked =
    exported.verification === 'signatures'
      ? `ledger verified (${exported.rounds} rounds: hash chain, signatures, quorum, recomputed models)`
      : `checked against the ledger's hash chain (${exported.rounds} rounds; add --ca to verify its signatures too)`;
  output.result(`round ${exported.round} model (${exported.onnx.length} bytes of ONNX, sha256 ${exported.onnxSha256}) written to ${path}; ${checked}`, {
    round: exported.round,
    path,
    bytes: exported.onnx.length,
    sha256: exported.onnxSha256,
    modelHash: exported.modelHash,
    taskHash: exported.taskHash,
    ledgerRounds: exported.rounds,
    headHash: exported.headHash,
    verification: exported.verification,
  });
}

async function readPem(path: string, flag: string): Promise<string> {
  return readFile(path, 'utf8').catch((error: unknown) => {
    throw new ConfigError(`${flag} ${resolve(path)} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  });
}
