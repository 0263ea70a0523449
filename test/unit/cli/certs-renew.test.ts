import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initCertificateAuthority, issueBundle } from '../../../certs/index.js';
import { registerCertsCommands } from '../../../cli/commands/certs.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-renew-'));
  await initCertificateAuthority({ dir, commonName: 'renew test CA', validDays: 30 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fedgate(args: readonly string[]): Promise<void> {
  const program = new Command('fedgate').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerCertsCommands(program);
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync([...args], { from: 'user' });
  } finally {
    write.mockRestore();
  }
}

describe('fedgate certs renew', () => {
  it('keeps the coordinator hosts by default and replaces them with --host', async () => {
    const first = await issueBundle({ dir, role: 'coordinator', name: 'coordinator', hosts: ['old.example', '127.0.0.1'], validDays: 10 });
    const san = async (): Promise<string | undefined> => new X509Certificate(await readFile(first.certificatePath)).subjectAltName;
    expect(await san()).toBe('DNS:old.example, IP Address:127.0.0.1');
    await fedgate(['certs', 'renew', 'coordinator', 'coordinator', '--dir', dir, '--json']);
    expect(await san()).toBe('DNS:old.example, IP Address:127.0.0.1');
    await fedgate(['certs', 'renew', 'coordinator', 'coordinator', '--dir', dir, '--host', 'new.example', '10.0.0.7', '--json']);
    expect(await san()).toBe('DNS:new.example, IP Address:10.0.0.7');
  });

  it('refuses --host for a participant certificate', async () => {
    await issueBundle({ dir, role: 'participant', name: 'site-a', validDays: 10 });
    await expect(fedgate(['certs', 'renew', 'participant', 'site-a', '--dir', dir, '--host', 'x.example'])).rejects.toThrow(/--host applies to the coordinator certificate only/);
  });
});
