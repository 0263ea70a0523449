/**
 * The operator commands (`fedgate status | participants | rounds | watch | export | certs revoke`)
 * against a real coordinator over mutual TLS, connected by flags or by an operator.yaml, in text and
 * --json. The federation: two sites, one committed round.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAdminCommands } from '../../cli/commands/admin.js';
import { registerCertsCommands } from '../../cli/commands/certs.js';
import { UsageError } from '../../cli/usage-error.js';
import { createAdminFederation, type AdminFederation } from '../support/admin-federation.js';

let h: AdminFederation;
let watchOutput: Promise<string>;
let operatorYaml: string;

/** Runs one fedgate command line in-process and returns what it printed on stdout. */
async function fedgate(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  let text = '';
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  const program = new Command('fedgate').exitOverride().configureOutput({ writeErr: () => undefined });
  registerCertsCommands(program);
  registerAdminCommands(program, { stdout, env });
  await program.parseAsync([...args], { from: 'user' });
  return text;
}

const bundle = (file: string): string => join(h.caDir, 'bundles', 'operator', 'ops', file);
const flags = (): string[] => ['--coordinator', h.address(), '--ca', bundle('ca.pem'), '--cert', bundle('ops.pem'), '--key', bundle('ops.key.pem')];

beforeAll(async () => {
  h = await createAdminFederation(2);
  const coordinator = await h.startCoordinator({ rounds: 1, minParticipants: 2 });
  operatorYaml = join(h.work.path, 'operator.yaml');
  // Paths relative to the file, as an operator keeps the bundle next to it.
  await writeFile(operatorYaml, [`coordinator: "${h.address()}"`, 'ca: ca/bundles/operator/ops/ca.pem', 'cert: ca/bundles/operator/ops/ops.pem', 'key: ca/bundles/operator/ops/ops.key.pem', 'timeout: 20s', ''].join('\n'));
  watchOutput = fedgate(['watch', '--count', '2', '--json', ...flags()]);
  await fedgate(['status', ...flags()]); // the watch's connection is up before the sites start
  h.startSite(0);
  h.startSite(1);
  await coordinator.done;
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('fedgate operator commands', () => {
  it('status prints the federation as text, and as JSON with hex digests', async () => {
    const text = await fedgate(['status', '--config', operatorYaml]);
    expect(text).toMatch(/^federation {4}admin-test /m);
    expect(text).toContain('rounds        1 of 1 committed');
    expect(text).toContain(`model         ${h.coordinator.federation.currentModelHash}`);
    const status = JSON.parse(await fedgate(['status', '--json'], { FEDGATE_OPERATOR_CONFIG: operatorYaml })) as Record<string, unknown>;
    expect(status).toMatchObject({ federationId: 'admin-test', committedRounds: 1, roundsConfigured: 1, currentModelHash: h.coordinator.federation.currentModelHash, secureAggregation: true });
    expect(status['currentModelOnnxSha256']).toMatch(/^[0-9a-f]{64}$/);
    // The task has no record-level DP: no epsilon, in text and in JSON.
    expect(text).toContain('privacy       no record-level DP (the task has no privacy.recordLevel)');
    expect(status['recordLevelPrivacy']).toBeNull();
    await expect(fedgate(['status', '--config', operatorYaml, '--delta', '2'])).rejects.toThrow(/--delta must be a number strictly between 0 and 1, such as 1e-5; got "2"/);
  });

  it('participants and rounds list the sites and the ledger', async () => {
    const participants = JSON.parse(await fedgate(['participants', '--json', ...flags()])) as { participants: { siteId: string; certificateSerial: string }[] };
    expect(participants.participants.map((site) => [site.siteId, site.certificateSerial])).toEqual(h.sites.map((site) => [site.name, site.serial]));
    expect(await fedgate(['participants', ...flags()])).toMatch(/^SITE +SERIAL +CONNECTED +DEVICE +VERSION +CERT EXPIRES\nsite-1 +[0-9A-F]+ /);
    const rounds = JSON.parse(await fedgate(['rounds', '--json', ...flags()])) as { rounds: { sequence: number; modelHash: string; survivors: string[] }[] };
    expect(rounds.rounds.map((round) => [round.sequence, round.modelHash, [...round.survivors].sort()])).toEqual([[1, h.coordinator.federation.currentModelHash, ['site-1', 'site-2']]]);
    expect(await fedgate(['rounds', '--last', '1', ...flags()])).toMatch(/^ROUND +COUNTER +SURVIVORS +ACCURACY +LOSS +MODEL +ONNX SHA-256 +COMMITTED\n1 +1 +2\/2 +\d+\.\d%/);
  });

  it('export writes the ONNX model whose SHA-256 the coordinator reports', async () => {
    const out = join(h.work.path, 'exported', 'model.onnx');
    const result = JSON.parse(await fedgate(['export', '--round', '1', '--out', out, '--json', ...flags()])) as { round: number; sha256: string; bytes: number };
    const written = await readFile(out);
    expect(createHash('sha256').update(written).digest('hex')).toBe(result.sha256);
    const status = JSON.parse(await fedgate(['status', '--json', ...flags()])) as { currentModelOnnxSha256: string };
    expect([result.round, result.bytes, result.sha256]).toEqual([1, written.length, status.currentModelOnnxSha256]);
    expect(await fedgate(['export', '--round', '0', '--out', join(h.work.path, 'initial.onnx'), ...flags()])).toMatch(/^round 0 model \(\d+ bytes of ONNX, sha256 [0-9a-f]{64}\) written to /);
  });

  it('watch printed the round events as JSON lines and stopped after --count', async () => {
    const lines = (await watchOutput).trim().split('\n').map((line) => JSON.parse(line) as { type: string; sequence: number; modelHash: string });
    expect(lines.map((event) => event.type)).toEqual(['ROUND_EVENT_STARTED', 'ROUND_EVENT_COMMITTED']);
    expect([lines[1]?.sequence, lines[1]?.modelHash]).toEqual([1, h.coordinator.federation.currentModelHash]);
  });

  it('certs revoke takes a site id or a serial and disconnects the site', async () => {
    const bySite = JSON.parse(await fedgate(['certs', 'revoke', 'site-2', '--json', ...flags()])) as { revoked: { certificateSerial: string }[]; closedSessions: string[] };
    expect(bySite.revoked.map((entry) => entry.certificateSerial)).toEqual([h.sites[1]?.serial]);
    expect(bySite.closedSessions).toEqual(['site-2']);
    const bySerial = await fedgate(['certs', 'revoke', (h.sites[0]?.serial ?? '').toLowerCase(), ...flags()]);
    expect(bySerial).toContain(`revoked ${h.sites[0]?.serial} (participant site-1)`);
    expect(bySerial).toContain('closed the session of site-1');
    expect(await fedgate(['participants', ...flags()])).toBe('no participant is connected\n');
  });

  it('refuses incomplete connection settings with the flag or key to set', async () => {
    await expect(fedgate(['status'])).rejects.toThrow(UsageError);
    await expect(fedgate(['status'])).rejects.toThrow(/--coordinator is required \(or `coordinator:` in operator.yaml/);
    await expect(fedgate(['status', '--coordinator', h.address(), '--ca', bundle('ca.pem'), '--cert', bundle('ops.pem')])).rejects.toThrow(/--key is required/);
    await expect(fedgate(['status', ...flags(), '--timeout', 'soon'])).rejects.toThrow(/--timeout must be a positive duration/);
    await expect(fedgate(['status', '--ca', join(h.work.path, 'missing.pem'), '--coordinator', h.address(), '--cert', bundle('ops.pem'), '--key', bundle('ops.key.pem')])).rejects.toThrow(/missing\.pem does not exist/);
  });
});
