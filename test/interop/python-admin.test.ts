/**
 * A Python operator needs nothing but the .proto files: stubs are generated from proto/ during the test
 * with Debian's protoc and grpc_python_plugin, and test/interop/admin_client.py (python3-grpcio) calls
 * GetStatus, ListRounds and GetModel over mutual TLS. The model it downloads must hash to what the
 * coordinator reports; with a participant certificate it must get PERMISSION_DENIED.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { protoRoot } from '../../proto/loader.js';
import { createAdminFederation, type AdminFederation, type Credentials } from '../support/admin-federation.js';
import { checkSystemDependency, DEBIAN_PYTHON, systemDependencies } from '../support/system-deps.js';

const run = promisify(execFile);
const grpcPython = checkSystemDependency(systemDependencies.pythonGrpc);
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'admin_client.py');

let h: AdminFederation;
let stubs: string;

/** Runs admin_client.py asynchronously (the coordinator answers from this same event loop). */
async function python(credentials: Credentials, mode: 'report' | 'probe'): Promise<Record<string, unknown>> {
  const directory = join(h.work.path, 'python', credentials.name);
  await mkdir(directory, { recursive: true });
  const files = { ca: join(directory, 'ca.pem'), cert: join(directory, 'cert.pem'), key: join(directory, 'key.pem') };
  await Promise.all([writeFile(files.ca, h.caPem), writeFile(files.cert, credentials.certPem), writeFile(files.key, credentials.keyPem, { mode: 0o600 })]);
  const { stdout } = await run(DEBIAN_PYTHON, [SCRIPT, stubs, h.address(), files.ca, files.cert, files.key, mode], { timeout: 120_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe.skipIf(grpcPython.skip)(`Python Admin client over mTLS ${grpcPython.reason}`, () => {
  beforeAll(async () => {
    h = await createAdminFederation(2);
    stubs = join(h.work.path, 'stubs');
    await mkdir(stubs, { recursive: true });
    const root = protoRoot();
    await run('/usr/bin/protoc', [
      `-I${root}`,
      `--python_out=${stubs}`,
      `--grpc_python_out=${stubs}`,
      '--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin',
      ...['admin', 'federation', 'round'].map((name) => join(root, 'fedgate', 'v1', `${name}.proto`)),
    ]);
    const coordinator = await h.startCoordinator({ rounds: 1, minParticipants: 2 });
    h.startSite(0);
    h.startSite(1);
    await coordinator.done;
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  it('reads status and rounds and downloads the model whose SHA-256 the coordinator reports', async () => {
    const report = (await python(h.operator, 'report')) as {
      federation_id: string;
      task_hash: string;
      committed_rounds: number;
      current_model_hash: string;
      current_model_onnx_sha256: string;
      rounds: { sequence: number; counter: number; survivors: string[]; model_hash: string; onnx_sha256: string }[];
      model: { round: number; bytes: number; sha256: string; sha256_by_hash: string; same_bytes: boolean; onnx_magic_ok: boolean };
    };
    const coordinatorView = await h.operatorClient().status();
    expect(report.federation_id).toBe('admin-test');
    expect(report.task_hash).toBe(h.coordinator.taskHash);
    expect(report.committed_rounds).toBe(1);
    expect(report.current_model_hash).toBe(h.coordinator.federation.currentModelHash);
    expect(report.rounds.map((round) => [round.sequence, round.counter, round.survivors, round.model_hash])).toEqual([[1, 1, ['site-1', 'site-2'], h.coordinator.federation.currentModelHash]]);
    // The digest Python computed over the bytes it received is the one the coordinator reports.
    expect(report.model.sha256).toBe(coordinatorView.currentModelOnnxSha256.toString('hex'));
    expect(report.model.sha256).toBe(report.current_model_onnx_sha256);
    expect(report.model.sha256).toBe(report.rounds[0]?.onnx_sha256);
    expect([report.model.sha256_by_hash, report.model.same_bytes, report.model.onnx_magic_ok]).toEqual([report.model.sha256, true, true]);
  });

  it('gets PERMISSION_DENIED with a participant certificate', async () => {
    const probe = await python(h.sites[0] as Credentials, 'probe');
    expect(probe).toMatchObject({ ok: false, code: 'PERMISSION_DENIED', reason: 'ROLE_NOT_ALLOWED' });
    expect(probe['details']).toContain('participant site-1 may not call /fedgate.v1.Admin/GetStatus');
    expect(await python(h.operator, 'probe')).toEqual({ ok: true });
  });
});
