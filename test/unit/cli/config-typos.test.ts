/** A typo in any YAML fedgate reads names the key probably meant (coordinator, site, operator, task). */
import { describe, expect, it } from 'vitest';
import { operatorConfigSchema } from '../../../cli/commands/admin-connection.js';
import { compileCoordinatorConfig, compileSiteConfig, siteConfigSchema, validateConfig } from '../../../cli/config/index.js';
import { closestName, knownKeys } from '../../../model/key-suggestions.js';
import { parseTaskDocument } from '../../../model/task.js';
import { DIGITS_MLP_TASK } from '../../support/in-memory-federation.js';

const coordinator = { federation_id: 'demo', tls: { ca: 'ca.pem', cert: 'c.pem', key: 'c.key.pem' }, task: 'task.yaml', rounds: 3 };
const site = { coordinator: '127.0.0.1:7443', tls: { ca: 'ca.pem', cert: 's.pem', key: 's.key.pem' }, data: { format: 'digits' }, accepted_tasks: ['a'.repeat(64)] };

function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

describe('closest key', () => {
  it.each([
    ['round', ['rounds', 'listen', 'task'], 'rounds'],
    ['stateDir', ['state_dir', 'task'], 'state_dir'],
    ['treshold', ['threshold', 'degree'], 'threshold'],
    ['sample_fracton', ['min', 'sample_fraction'], 'sample_fraction'],
    ['colour', ['rounds', 'task'], undefined],
  ] as const)('%s -> %s', (typo, candidates, meant) => expect(closestName(typo, candidates)).toBe(meant));
});

describe('unknown keys say which key was meant', () => {
  it('coordinator.yaml: `round:` instead of `rounds:`', () => {
    const { rounds: _rounds, ...withoutRounds } = coordinator;
    const message = messageOf(() => compileCoordinatorConfig({ ...withoutRounds, round: 3 }, 'coordinator.yaml', '/etc/fedgate'));
    expect(message).toContain('(top level): unknown key "round" (did you mean "rounds"?)');
    expect(message).toMatch(/rounds: .*expected number/);
  });

  it('coordinator.yaml: nested keys, and the allowed keys when nothing is close', () => {
    expect(messageOf(() => compileCoordinatorConfig({ ...coordinator, secagg: { treshold: 3 } }, 'c.yaml', '/'))).toContain('secagg: unknown key "treshold" (did you mean "threshold"?)');
    expect(messageOf(() => compileCoordinatorConfig({ ...coordinator, deadlines: { colour: '1s' } }, 'c.yaml', '/'))).toContain(
      'deadlines: unknown key "colour" (expected one of advertise_keys, share_keys, masked_input, consistency_check, unmask, commit)',
    );
  });

  it('site.yaml: inside the data format that was chosen, and in the policy', () => {
    const csv = { format: 'csv', path: 'data.csv', label_colum: 'y' };
    expect(messageOf(() => compileSiteConfig({ ...site, data: csv }, 'site.yaml', '/'))).toContain('data: unknown key "label_colum" (did you mean "label_column"?)');
    expect(messageOf(() => compileSiteConfig({ ...site, policy: { minParticipants: 3 } }, 'site.yaml', '/'))).toContain('policy: unknown key "minParticipants" (did you mean "min_participants"?)');
  });

  it('operator.yaml', () => {
    expect(messageOf(() => validateConfig(operatorConfigSchema, { coordinator: 'h:1', 'server-name': 'localhost' }, 'operator.yaml'))).toContain('unknown key "server-name" (did you mean "server_name"?)');
  });

  it('task documents', () => {
    const { training, ...rest } = DIGITS_MLP_TASK;
    expect(messageOf(() => parseTaskDocument({ ...rest, traning: training }))).toContain(`(document): unknown key(s) 'traning' (did you mean "training"?)`);
    expect(messageOf(() => parseTaskDocument({ ...DIGITS_MLP_TASK, model: { ...DIGITS_MLP_TASK.model, hiden: [4] } }))).toContain(`model: unknown key(s) 'hiden' (did you mean "hidden"?)`);
  });

  it('knows the keys of the member of a discriminated union the document chose', () => {
    expect(knownKeys(siteConfigSchema, ['data'], { data: { format: 'idx' } })).toContain('test_images');
    expect(knownKeys(siteConfigSchema, ['data'], { data: { format: 'digits' } })).not.toContain('test_images');
  });
});
