/**
 * One coordinator per state directory. Two coordinators appending to one ledger would fork the chain
 * and reuse round counters, so the coordinator holds `<state_dir>/coordinator.lock` while it runs: a
 * file created exclusively, naming the process (pid, host, start time). A lock left by a coordinator
 * that was killed is recognised as stale - its process is gone, or the pid now belongs to another
 * process (a different start time, or this very process after a container restart) - and taken over,
 * so crash recovery needs no manual step.
 */
import { readFileSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { StateError } from './state-error.js';

export const LOCK_FILE_NAME = 'coordinator.lock';

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** Kernel start time of the process (field 22 of /proc/<pid>/stat), when the platform has /proc. */
  readonly processStart: string | null;
  readonly since: string;
}

export interface StateLock {
  readonly path: string;
  /** Removes the lock file (if it is still ours). */
  release(): Promise<void>;
}

/** Directories locked by this process: a second coordinator in the same process is refused too. */
const heldHere = new Set<string>();

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; starttime is field 22, i.e. index 19 after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why the owner recorded in a lock file is gone, or undefined if it may still be running. */
function staleBecause(owner: LockOwner): string | undefined {
  if (owner.host !== hostname()) return undefined; // another machine sharing the directory: cannot tell
  if (owner.pid === process.pid) return 'it names this process id, left by an earlier run (e.g. before a container restart)';
  if (!isAlive(owner.pid)) return `process ${owner.pid} is no longer running`;
  const start = processStart(owner.pid);
  if (owner.processStart !== null && start !== null && start !== owner.processStart) return `process id ${owner.pid} now belongs to another process`;
  return undefined;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.since === 'string') {
      return { pid: value.pid, host: value.host, since: value.since, processStart: typeof value.processStart === 'string' ? value.processStart : null };
    }
  } catch {
    // fall through: an unreadable lock (e.g. a crash mid-write) is treated below
  }
  return undefined;
}

/**
 * Takes the lock of `stateDirectory` (which must exist) or throws a StateError naming the coordinator
 * that holds it and what to do.
 */
export async function acquireStateLock(stateDirectory: string, onStale?: (reason: string) => void): Promise<StateLock> {
  const directory = resolve(stateDirectory);
  const path = join(directory, LOCK_FILE_NAME);
  if (heldHere.has(directory)) {
    throw new StateError('LOCKED', `state_dir ${directory} is already in use by a coordinator in this process; stop it before starting another on the same state_dir`);
  }
  const owner: LockOwner = { pid: process.pid, host: hostname(), processStart: processStart(process.pid), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(path, 'wx', 0o600);
      try {
        await file.writeFile(JSON.stringify(owner) + '\n');
        await file.sync();
      } finally {
        await file.close();
      }
      heldHere.add(directory);
      return {
        path,
        async release() {
          heldHere.delete(directory);
          const current = parseOwner(await readFile(path, 'utf8').catch(() => ''));
          if (current?.pid === owner.pid && current.since === owner.since) await unlink(path).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StateError('IO_FAILED', `cannot create ${path}: ${(error as Error).message}; check that state_dir is writable`, { cause: error });
      }
    }
    const text = await readFile(path, 'utf8').catch(() => '');
    const holder = parseOwner(text);
    const reason = holder === undefined ? 'it is empty or unreadable (a coordinator crashed while taking it)' : staleBecause(holder);
    if (reason === undefined) {
      const who = holder === undefined ? 'another coordinator' : `a coordinator (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
      throw new StateError(
        'LOCKED',
        `state_dir ${directory} is in use by ${who}: two coordinators on one state_dir would fork its ledger. Stop that coordinator first; if it is certainly gone (e.g. it ran on another machine sharing this directory), delete ${path}`,
      );
    }
    onStale?.(`${path}: taking over a stale lock: ${reason}`);
    await unlink(path).catch(() => undefined);
  }
  throw new StateError('LOCKED', `state_dir ${directory}: another coordinator took ${path} at the same moment; start only one coordinator per state_dir`);
}
