import { mkdtemp, readdir, readFile, rm, writeFile, unlink, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, ModelStore, RoundCounter, StateError, canonicalJson, findChainProblem, readLedgerDirectory } from '../../../../coordinator/state/index.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-state-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('RoundCounter', () => {
  it('never reuses a counter value across reopen', async () => {
    const first = await RoundCounter.open(directory);
    const a = await first.allocate();
    const b = await first.allocate();
    const reopened = await RoundCounter.open(directory);
    const c = await reopened.allocate();
    expect([a.counter, b.counter, c.counter]).toEqual([1n, 2n, 3n]);
    expect(c.bytes).toHaveLength(24);
    expect(Buffer.from(c.bytes.subarray(0, 8)).readBigUInt64BE()).toBe(3n);
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(false);
  });

  it('rejects a corrupt or future-version counter file with the path in the message', async () => {
    await writeFile(join(directory, 'round-counter.json'), '{"formatVersion":1,"next":"-3"}');
    await expect(RoundCounter.open(directory)).rejects.toThrow(/round-counter\.json.*positive decimal/);
    await writeFile(join(directory, 'round-counter.json'), '{"formatVersion":9,"next":"3"}');
    await expect(RoundCounter.open(directory)).rejects.toThrow(/format version 9/);
    await writeFile(join(directory, 'round-counter.json'), '{not json');
    await expect(RoundCounter.open(directory)).rejects.toBeInstanceOf(StateError);
  });
});

describe('ModelStore', () => {
  it('stores by content hash and detects a damaged file', async () => {
    const store = await ModelStore.open(directory);
    const hash = await store.put(new Uint8Array([1, 2, 3]));
    expect(await store.has(hash)).toBe(true);
    expect([...(await store.get(hash))]).toEqual([1, 2, 3]);
    await writeFile(join(directory, 'models', `${hash}.bin`), new Uint8Array([1, 2, 4]));
    await expect(store.get(hash)).rejects.toThrow(/damaged/);
    await expect(store.get('f'.repeat(64))).rejects.toThrow(/no model/);
    await expect(store.get('../../etc/passwd')).rejects.toThrow(/64 lower-case hex/);
  });

  it('removes temporary files left by a crashed writer', async () => {
    await ModelStore.open(directory);
    await writeFile(join(directory, 'models', 'x.bin.tmp-123-abc'), 'partial');
    await ModelStore.open(directory);
    expect(await readdir(join(directory, 'models'))).toEqual([]);
  });
});

describe('canonicalJson', () => {
  it('sorts keys and rejects values without a canonical form', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}');
    expect(() => canonicalJson({ a: 0.5 })).toThrow(/safe integers/);
  });
});

describe('Ledger', () => {
  async function threeRecords(): Promise<string> {
    const ledger = await Ledger.open(directory);
    for (const round of [1, 2, 3]) await ledger.append({ round, model: `m${round}` });
    return join(directory, 'ledger');
  }

  it('chains records and reopens them intact', async () => {
    await threeRecords();
    const reopened = await Ledger.open(directory);
    expect(reopened.length).toBe(3);
    const records = await Promise.all([1, 2, 3].map((sequence) => reopened.read(sequence)));
    expect(records.map((record) => record.sequence)).toEqual([1, 2, 3]);
    expect(records[1]?.previousRecordHash).toBe(records[0]?.recordHash);
    expect(reopened.head).toEqual(records[2]);
    const fourth = await reopened.append({ round: 4 });
    expect(fourth.sequence).toBe(4);
    expect(reopened.head).toEqual(fourth);
    expect(reopened.headHash).toBe(fourth.recordHash);
  });

  it('reads older records from disk and refuses one edited, removed or missing since it was opened', async () => {
    const ledgerDirectory = await threeRecords();
    const ledger = await Ledger.open(directory);
    expect((await ledger.read(1)).body).toEqual({ round: 1, model: 'm1' });
    await expect(ledger.read(0)).rejects.toThrow(/records 1\.\.3/);
    await expect(ledger.read(4)).rejects.toThrow(/records 1\.\.3/);
    const second = join(ledgerDirectory, '00000002.json');
    await writeFile(second, (await readFile(second, 'utf8')).replace('"m2"', '"mX"'));
    await expect(ledger.read(2)).rejects.toThrow(/00000002\.json has changed/);
    await rm(join(ledgerDirectory, '00000001.json'));
    await expect(ledger.read(1)).rejects.toThrow(/00000001\.json has disappeared/);
  });

  it('names the first bad record when one byte of a body changes', async () => {
    const ledgerDirectory = await threeRecords();
    const path = join(ledgerDirectory, '00000002.json');
    await writeFile(path, (await readFile(path, 'utf8')).replace('"m2"', '"m9"'));
    expect(findChainProblem(await readLedgerDirectory(ledgerDirectory))).toMatch(/^record 2: content/);
    await expect(Ledger.open(directory)).rejects.toThrow(/record 2/);
  });

  it('detects a removed record and swapped records', async () => {
    const ledgerDirectory = await threeRecords();
    await unlink(join(ledgerDirectory, '00000002.json'));
    expect(findChainProblem(await readLedgerDirectory(ledgerDirectory))).toMatch(/^record 2: found sequence 3/);

    await rm(ledgerDirectory, { recursive: true });
    await threeRecords();
    await rename(join(ledgerDirectory, '00000002.json'), join(ledgerDirectory, 'tmp'));
    await rename(join(ledgerDirectory, '00000003.json'), join(ledgerDirectory, '00000002.json'));
    await rename(join(ledgerDirectory, 'tmp'), join(ledgerDirectory, '00000003.json'));
    expect(findChainProblem(await readLedgerDirectory(ledgerDirectory))).toMatch(/^record 2:/);
  });

  it('a truncated tail is invisible: only complete files are records', async () => {
    const ledgerDirectory = await threeRecords();
    await writeFile(join(ledgerDirectory, '00000004.json.tmp-1-aa'), '{"formatVersion":1,"seq');
    const reopened = await Ledger.open(directory);
    expect(reopened.length).toBe(3);
  });
});
