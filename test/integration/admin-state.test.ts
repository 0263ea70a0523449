/**
 * What the Admin service keeps in the coordinator's state directory, on a real file system: the
 * revocation record (revocations.json) and the ONNX digest index (onnx-exports.json). Both must
 * survive a reopen, and a damaged file must stop the coordinator with a message naming it rather than
 * silently forget a revocation or report a wrong digest.
 */
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initCertificateAuthority, issueBundle, revokeCertificate } from '../../certs/index.js';
import { coordinatorAdminOptions } from '../../cli/commands/admin-ca.js';
import { ModelExports, ONNX_EXPORTS_FILE_NAME, RevocationRegistry, REVOCATIONS_FILE_NAME } from '../../coordinator/admin/index.js';
import { ModelStore, StateError } from '../../coordinator/state/index.js';
import { sha256Hex } from '../../crypto/hash.js';
import { verifyPeerCertificate } from '../../crypto/certificate.js';
import { createTempDirectory, createTestPki, type TempDirectory } from '../support/pki.js';

let directory: TempDirectory;
beforeEach(async () => {
  directory = await createTempDirectory('fedgate-admin-state-');
});
afterEach(async () => {
  await directory.remove();
});

const entry = (serial: string, commonName: string) => ({ serial, commonName, role: 'participant', revokedAt: new Date('2026-01-02T03:04:05Z'), crlNumber: '7' });

describe('RevocationRegistry', () => {
  it('merges the CRL serials with recorded revocations, and a reopen sees what was recorded', async () => {
    const registry = await RevocationRegistry.open(directory.path, ['00ab', 'C0FFEE']);
    expect([...registry.serials].sort()).toEqual(['AB', 'C0FFEE']);
    const seen: ReadonlySet<string>[] = [];
    registry.onChange((serials) => seen.push(serials));
    await registry.record([entry('5F3A', 'site-a')]);
    await registry.record([entry('5F3A', 'site-a')]); // nothing new: no write, no event
    expect(seen.map((serials) => [...serials].sort())).toEqual([['5F3A', 'AB', 'C0FFEE']]);
    const reopened = await RevocationRegistry.open(directory.path);
    expect([...reopened.serials]).toEqual(['5F3A']);
    expect(reopened.recorded).toEqual([entry('5F3A', 'site-a')]);
    expect(reopened.has('005f3a')).toBe(true);
  });

  it('gives rounds a trust anchor that sees a revocation made after the round began', async () => {
    const pki = await createTestPki();
    const site = await pki.participant('site-a');
    const registry = await RevocationRegistry.open(directory.path);
    const anchor = registry.trustAnchor(new X509Certificate(pki.ca.certificatePem));
    expect(verifyPeerCertificate(site.certificatePem, anchor, new Date()).siteId).toBe('site-a');
    await registry.record([entry(site.serial, 'site-a')]);
    expect(() => verifyPeerCertificate(site.certificatePem, anchor, new Date())).toThrow(/revoked/);
    expect(anchor.revokedSerials.has(site.serial)).toBe(true);
  });

  it('refuses a damaged record instead of forgetting revocations', async () => {
    const path = join(directory.path, REVOCATIONS_FILE_NAME);
    for (const content of ['{not json', JSON.stringify({ formatVersion: 2, revoked: [] }), JSON.stringify({ formatVersion: 1, revoked: [{ serial: 'zz' }] })]) {
      await writeFile(path, content);
      const error = await RevocationRegistry.open(directory.path).then(() => undefined, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(StateError);
      expect((error as StateError).reason).toBe('CORRUPT');
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toContain('never delete it');
    }
  });
});

describe('ModelExports', () => {
  const weights = new Uint8Array([1, 2, 3, 4]);
  const toOnnx = (bytes: Uint8Array): Uint8Array => Uint8Array.from([0x08, ...bytes]);

  it('reports the SHA-256 of the export, keeps it across a reopen, and finds a model by its ONNX digest', async () => {
    const store = await ModelStore.open(directory.path);
    const modelHash = await store.put(weights);
    let exportsRun = 0;
    const exporter = (bytes: Uint8Array): Uint8Array => {
      exportsRun += 1;
      return toOnnx(bytes);
    };
    const exports = await ModelExports.open(directory.path, store, exporter);
    const expected = sha256Hex(toOnnx(weights));
    expect(await exports.onnxSha256(modelHash)).toBe(expected);
    expect((await exports.export(modelHash)).sha256).toBe(expected);
    expect(exportsRun).toBe(1); // the last export is kept in memory
    expect(exports.modelHashOfOnnx(expected)).toBe(modelHash);
    const reopened = await ModelExports.open(directory.path, store, exporter);
    expect(reopened.knownOnnxSha256(modelHash)).toBe(expected);
    expect(await reopened.onnxSha256(modelHash)).toBe(expected);
    expect(exportsRun).toBe(1);
  });

  it('fails loudly when an export no longer matches the recorded digest', async () => {
    const store = await ModelStore.open(directory.path);
    const modelHash = await store.put(weights);
    await (await ModelExports.open(directory.path, store, toOnnx)).onnxSha256(modelHash);
    const drifted = await ModelExports.open(directory.path, store, (bytes) => Uint8Array.from([0x08, 0, ...bytes]));
    await expect(drifted.export(modelHash)).rejects.toThrow(/no longer deterministic or the index was edited/);
    const path = join(directory.path, ONNX_EXPORTS_FILE_NAME);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ formatVersion: 1, onnxSha256: { [modelHash]: sha256Hex(toOnnx(weights)) } });
    await writeFile(path, '[]');
    await expect(ModelExports.open(directory.path, store, toOnnx)).rejects.toThrow(/is not a fedgate ONNX export index/);
  });
});

describe('the CA directory of coordinator.yaml (tls.ca_dir)', () => {
  it('honours offline revocations at start and revokes live through the same directory', async () => {
    const caDir = join(directory.path, 'ca');
    await initCertificateAuthority({ dir: caDir, commonName: 'state test CA', validDays: 2 });
    const caPem = await readFile(join(caDir, 'ca.pem'), 'utf8');
    const [offline, live] = await Promise.all(['site-a', 'site-b'].map((name) => issueBundle({ dir: caDir, role: 'participant', name, validDays: 1 })));
    await revokeCertificate({ dir: caDir, serial: offline?.certificate.serial ?? '' });
    const config = { admin: { enabled: true }, tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem', caDir }, source: 'coordinator.yaml' };
    const options = await coordinatorAdminOptions(config, caPem);
    expect(options.revokedSerials).toEqual([offline?.certificate.serial]);
    const authority = options.admin.revocationAuthority;
    expect((await authority?.participantCertificates('site-b', new Date()))?.map((certificate) => certificate.serial)).toEqual([live?.certificate.serial]);
    expect(await authority?.certificate('0ABC')).toBeUndefined();
    const result = await authority?.revoke([live?.certificate.serial ?? ''], new Date());
    expect(result?.revoked.map((entry) => [entry.serial, entry.commonName, entry.alreadyRevoked])).toEqual([[live?.certificate.serial, 'site-b', false]]);
    expect((await coordinatorAdminOptions(config, caPem)).revokedSerials.sort()).toEqual([offline?.certificate.serial, live?.certificate.serial].sort());

    const other = await createTestPki('another CA');
    await expect(coordinatorAdminOptions(config, other.ca.certificatePem)).rejects.toThrow(/tls.ca_dir \(.*\) holds a different CA than tls.ca/);
    expect(await coordinatorAdminOptions({ ...config, tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' } }, caPem)).toEqual({ admin: { enabled: true }, revokedSerials: [] });
  });
});
