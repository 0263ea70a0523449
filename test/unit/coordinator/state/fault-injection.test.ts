import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crashAtFaultPoint, type FaultPointName } from '../../../../coordinator/state/fault-injection.js';
import { Ledger } from '../../../../coordinator/state/ledger.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-fault-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('crashAtFaultPoint (the hook cli/ builds from FEDGATE_FAULT_INJECTION)', () => {
  it('kills at the n-th time the named point is reached, and only then', () => {
    const kills: number[] = [];
    let reached = 0;
    const hook = crashAtFaultPoint('ledger_write:2', () => kills.push(reached));
    for (reached = 1; reached <= 4; reached++) hook('ledger_write');
    expect(kills).toEqual([2]);
  });

  it('without a count kills the first time', () => {
    let kills = 0;
    crashAtFaultPoint('ledger_write', () => (kills += 1))('ledger_write');
    expect(kills).toBe(1);
  });

  it.each(['ledger_writ:1', 'ledger_write:0', 'ledger_write:two', 'ledger_write:1:2', ''])('refuses %j, naming the accepted points', (spec) => {
    expect(() => crashAtFaultPoint(spec, () => undefined)).toThrow(/expected <point>:<count> with a point among ledger_write/);
  });
});

describe('the ledger calls its fault point after the record is durable, before the rename', () => {
  it('a failure there leaves no committed record; a reopened ledger is empty and intact', async () => {
    const seen: FaultPointName[] = [];
    const ledger = await Ledger.open(directory, {
      faultPoint: (name) => {
        seen.push(name);
        throw new Error('crash');
      },
    });
    await expect(ledger.append({ round: 1 })).rejects.toThrow('crash');
    expect(seen).toEqual(['ledger_write']);
    const files = await readdir(join(directory, 'ledger'));
    expect(files.filter((name) => name.endsWith('.json'))).toEqual([]);
    // A hook that throws (rather than killing the process, as crashAtFaultPoint does; the e2e crash test
    // covers that) lets the atomic write remove its temporary file.
    expect(files).toEqual([]);
    expect((await Ledger.open(directory)).length).toBe(0);
  });

  it('without a fault point appends as usual', async () => {
    const ledger = await Ledger.open(directory);
    await ledger.append({ round: 1 });
    expect(ledger.length).toBe(1);
  });
});

describe('a coordinator killed while appending a ledger record', () => {
  /** Appends `body` with a fault hook that keeps a copy of the durable temporary record, as SIGKILL would leave it. */
  async function crashWhileAppending(body: Record<string, number>): Promise<string> {
    const kept = join(directory, 'kept-temporary');
    let temporaryName = '';
    const crashing = await Ledger.open(directory, {
      faultPoint: () => {
        temporaryName = readdirSync(join(directory, 'ledger')).find((name) => name.includes('.tmp-')) ?? '';
        copyFileSync(join(directory, 'ledger', temporaryName), kept);
        throw new Error('killed');
      },
    });
    await expect(crashing.append(body)).rejects.toThrow('killed');
    await rename(kept, join(directory, 'ledger', temporaryName));
    return join(directory, 'ledger', temporaryName);
  }

  it('completes the append on restart when the leftover record is whole and links to the head', async () => {
    const first = await Ledger.open(directory);
    await first.append({ round: 1 });
    await crashWhileAppending({ round: 2 });
    const reopened = await Ledger.open(directory);
    expect(reopened.length).toBe(2);
    expect(reopened.head?.body).toEqual({ round: 2 });
    expect((await readdir(join(directory, 'ledger'))).sort()).toEqual(['00000001.json', '00000002.json']);
    // And the chain goes on from it.
    await reopened.append({ round: 3 });
    expect((await Ledger.open(directory)).length).toBe(3);
  });

  it.each([
    ['torn (cut short before its fsync)', (text: string) => text.slice(0, Math.floor(text.length / 2))],
    ['altered (its hash no longer matches)', (text: string) => text.replace('"round": 2', '"round": 9').replace('"round":2', '"round":9')],
  ])('discards a leftover record that is %s', async (_case, damage) => {
    const first = await Ledger.open(directory);
    await first.append({ round: 1 });
    const leftover = await crashWhileAppending({ round: 2 });
    await writeFile(leftover, damage(await readFile(leftover, 'utf8')));
    const reopened = await Ledger.open(directory);
    expect(reopened.length).toBe(1);
    expect(await readdir(join(directory, 'ledger'))).toEqual(['00000001.json']);
  });
});
