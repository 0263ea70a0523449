/**
 * The final model's federated accuracy (issue 11, item 7): the metrics of round r are of the model
 * round r started from, so without more the last committed model is never scored. Once the configured
 * rounds have committed the coordinator runs one evaluation-only round on it (real daemons, mTLS,
 * SecAgg+: each site evaluates the final model on its own test split and only masked metric sums reach
 * the coordinator; no training, no commit), and `fedgate status` and `fedgate watch` show the result.
 * The sites record that they reported the final model's metrics, so a restart does not evaluate it again,
 * and a federation continued later (rounds raised) trains on that model without asking for its metrics
 * again, then evaluates its new final model.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAdminCommands } from '../../cli/commands/admin.js';
import type { RoundEvent } from '../../coordinator/federation/federation.js';
import type { RunningParticipant } from '../../participant/daemon/participant-app.js';
import { createAdminFederation, type AdminFederation } from '../support/admin-federation.js';

const SITES = 3;
let h: AdminFederation;
let events: RoundEvent[];
let daemons: RunningParticipant[];
let watchOutput: Promise<string>;

async function fedgate(args: readonly string[]): Promise<string> {
  let text = '';
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  const program = new Command('fedgate').exitOverride().configureOutput({ writeErr: () => undefined });
  registerAdminCommands(program, { stdout, env: {} });
  await program.parseAsync([...args], { from: 'user' });
  return text;
}

const bundle = (file: string): string => join(h.caDir, 'bundles', 'operator', 'ops', file);
const flags = (): string[] => ['--coordinator', h.address(), '--ca', bundle('ca.pem'), '--cert', bundle('ops.pem'), '--key', bundle('ops.key.pem')];

/** Starts the coordinator on the harness's state directory with `rounds`, records its events, starts every site. */
async function runFederation(rounds: number): Promise<void> {
  const coordinator = await h.startCoordinator({ rounds, minParticipants: SITES, finalEvaluation: true });
  coordinator.federation.on('round', (event) => events.push(event));
  daemons = Array.from({ length: SITES }, (_, index) => h.startSite(index));
}

async function stopAll(): Promise<void> {
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  await h.coordinator.stop();
}

beforeAll(async () => {
  h = await createAdminFederation(SITES);
  events = [];
  const coordinator = await h.startCoordinator({ rounds: 2, minParticipants: SITES, finalEvaluation: true });
  coordinator.federation.on('round', (event) => events.push(event));
  watchOutput = fedgate(['watch', '--count', '6', '--json', ...flags()]);
  await fedgate(['status', ...flags()]);
  daemons = Array.from({ length: SITES }, (_, index) => h.startSite(index));
  await coordinator.done;
}, 240_000);

afterAll(async () => {
  await h?.close();
});

describe('the evaluation-only round on the final model', () => {
  it('runs after the last commit, on the final model, inside the secure sum, and ends the federation', async () => {
    expect(events.map((event) => [event.type, event.purpose ?? 'train_and_evaluate'])).toEqual([
      ['round_started', 'train_and_evaluate'],
      ['round_committed', 'train_and_evaluate'],
      ['round_started', 'train_and_evaluate'],
      ['round_committed', 'train_and_evaluate'],
      ['round_started', 'evaluate'],
      ['round_evaluated', 'evaluate'],
    ]);
    const lastCommit = events[3] as RoundEvent;
    const evaluated = events[5] as RoundEvent;
    expect(evaluated.modelHash).toBe(h.coordinator.federation.currentModelHash);
    expect(evaluated.modelHash).toBe(lastCommit.modelHash);
    expect(evaluated.sequence).toBe(2);
    expect([...(evaluated.survivors ?? [])].sort()).toEqual(['site-1', 'site-2', 'site-3']);
    // Every site evaluated the same test split it reports in training rounds; no update was summed.
    expect(evaluated.metrics?.evalExamples).toBe(lastCommit.metrics?.evalExamples);
    expect(evaluated.metrics?.weightSum).toBe(0);
    const accuracy = (evaluated.metrics?.evalCorrect ?? 0) / (evaluated.metrics?.evalExamples ?? 1);
    expect(accuracy).toBeGreaterThan(0.5);
    // The ledger holds the two training rounds only.
    expect(h.coordinator.federation.committedRounds).toBe(2);
    expect(h.coordinator.federation.ledgerRecords.length).toBe(2);
    const stored = JSON.parse(await readFile(join(h.stateDirectory, 'evaluations.json'), 'utf8')) as { evaluations: { modelHash: string; sequence: number }[] };
    expect(stored.evaluations.map((entry) => [entry.modelHash, entry.sequence])).toEqual([[evaluated.modelHash, 2]]);
  });

  it('fedgate status and fedgate watch show the final accuracy', async () => {
    const evaluated = events[5] as RoundEvent;
    const examples = evaluated.metrics?.evalExamples ?? 0;
    const percent = `${(((evaluated.metrics?.evalCorrect ?? 0) / examples) * 100).toFixed(1)}%`;
    const text = await fedgate(['status', ...flags()]);
    expect(text).toMatch(new RegExp(`^final model {3}round 2 model: accuracy ${percent.replace('.', '\\.')}, loss \\d+\\.\\d{4} on ${examples} examples \\(evaluation-only round, 3/3 sites, `, 'm'));
    const status = JSON.parse(await fedgate(['status', '--json', ...flags()])) as { finalEvaluation: { sequence: number; modelHash: string; metrics: { evalAccuracy: number } } };
    expect([status.finalEvaluation.sequence, status.finalEvaluation.modelHash]).toEqual([2, evaluated.modelHash]);
    expect(status.finalEvaluation.metrics.evalAccuracy).toBeCloseTo((evaluated.metrics?.evalCorrect ?? 0) / examples, 12);
    const watched = (await watchOutput).trim().split('\n').map((line) => JSON.parse(line) as { type: string; purpose: string; sequence: number });
    expect(watched.map((event) => event.type)).toEqual(['ROUND_EVENT_STARTED', 'ROUND_EVENT_COMMITTED', 'ROUND_EVENT_STARTED', 'ROUND_EVENT_COMMITTED', 'ROUND_EVENT_STARTED', 'ROUND_EVENT_EVALUATED']);
    expect([watched[4]?.purpose, watched[5]?.purpose, watched[5]?.sequence]).toEqual(['evaluate', 'evaluate', 2]);
  });

  it('a restarted coordinator does not evaluate the final model again; a continued federation trains on it without its metrics, then evaluates its new final model', async () => {
    await stopAll();
    events = [];
    await runFederation(2);
    await h.coordinator.done;
    expect(events).toEqual([]);
    expect(h.coordinator.federation.finalEvaluation?.sequence).toBe(2);
    await stopAll();

    events = [];
    await runFederation(3);
    await h.coordinator.done;
    expect(events.map((event) => [event.type, event.purpose ?? 'train_and_evaluate'])).toEqual([
      // The sites reported the round 2 model's metrics already: round 3 asks for none, and they take part.
      ['round_started', 'train'],
      ['round_committed', 'train'],
      ['round_started', 'evaluate'],
      ['round_evaluated', 'evaluate'],
    ]);
    expect(events[1]?.metrics?.evalExamples).toBe(0);
    expect(events[1]?.metrics?.weightSum).toBeGreaterThan(0);
    expect(events[3]?.sequence).toBe(3);
    expect(events[3]?.metrics?.evalExamples).toBeGreaterThan(0);
    expect(h.coordinator.federation.modelEvaluations.map((evaluation) => evaluation.sequence)).toEqual([2, 3]);
  });
});
