import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCK_FILE_NAME, StateError, acquireStateLock } from '../../../../coordinator/state/index.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-lock-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const lockPath = (): string => join(directory, LOCK_FILE_NAME);
const writeOwner = (owner: object): Promise<void> => writeFile(lockPath(), JSON.stringify({ host: hostname(), since: '2026-01-01T00:00:00.000Z', processStart: null, ...owner }));

async function refusal(promise: Promise<unknown>): Promise<StateError> {
  const error = await promise.then(() => new Error('expected the lock to be refused'), (caught: unknown) => caught);
  expect(error).toBeInstanceOf(StateError);
  expect((error as StateError).reason).toBe('LOCKED');
  return error as StateError;
}

describe('state_dir lock: one coordinator per state directory', () => {
  it('is held until released, and a second coordinator in the same process is refused meanwhile', async () => {
    const lock = await acquireStateLock(directory);
    expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    const error = await refusal(acquireStateLock(directory));
    expect(error.message).toMatch(/already in use by a coordinator in this process/);
    await lock.release();
    await expect(readFile(lockPath())).rejects.toThrow(/ENOENT/);
    const again = await acquireStateLock(directory);
    await again.release();
  });

  it('refuses while the recorded process runs, naming it and how to recover', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await writeOwner({ pid: child.pid });
      const error = await refusal(acquireStateLock(directory));
      expect(error.message).toContain(`pid ${String(child.pid)} on ${hostname()}`);
      expect(error.message).toContain(`delete ${lockPath()}`);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    // Killed: the lock is stale now and is taken over without a manual step.
    const stale: string[] = [];
    const lock = await acquireStateLock(directory, (reason) => stale.push(reason));
    expect(stale).toEqual([expect.stringMatching(new RegExp(`process ${String(child.pid)} is no longer running`))]);
    await lock.release();
  });

  it('takes over a lock naming this very process id from an earlier run, or with unreadable content', async () => {
    await writeOwner({ pid: process.pid });
    const stale: string[] = [];
    const first = await acquireStateLock(directory, (reason) => stale.push(reason));
    await first.release();
    await writeFile(lockPath(), '{"pid": 12');
    const second = await acquireStateLock(directory, (reason) => stale.push(reason));
    await second.release();
    expect(stale).toEqual([expect.stringMatching(/earlier run/), expect.stringMatching(/empty or unreadable/)]);
  });

  it('takes over when the process id now belongs to a process started at another time', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await writeOwner({ pid: child.pid, processStart: '1' });
      const stale: string[] = [];
      const lock = await acquireStateLock(directory, (reason) => stale.push(reason));
      expect(stale).toEqual([expect.stringMatching(/now belongs to another process/)]);
      await lock.release();
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });

  it('refuses a lock taken on another host (it cannot check that process)', async () => {
    await writeOwner({ pid: 1, host: 'elsewhere.example' });
    const error = await refusal(acquireStateLock(directory));
    expect(error.message).toContain('pid 1 on elsewhere.example');
  });

  it('leaves a lock that another coordinator has since taken when an old holder releases', async () => {
    const lock = await acquireStateLock(directory);
    await writeOwner({ pid: 424242, since: '2026-02-02T00:00:00.000Z' });
    await lock.release();
    expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toMatchObject({ pid: 424242 });
  });
});
