/**
 * Child processes of the demo: each runs the real `fedgate` CLI (compiled JS under dist/, or the
 * TypeScript source through tsx when the demo itself runs from source), its JSON log lines parsed as
 * they arrive, stderr kept for the error report.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface FedgateProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Last lines of stderr and non-JSON stdout, for error messages. */
  tail(): string;
}

const fromSource = import.meta.url.endsWith('.ts');
const mainScript = fileURLToPath(new URL(fromSource ? '../main.ts' : '../main.js', import.meta.url));

export function spawnFedgate(name: string, args: readonly string[], onLog: (entry: Record<string, unknown>) => void): FedgateProcess {
  const execArgs = fromSource ? ['--import', 'tsx', mainScript, ...args] : [mainScript, ...args];
  const child = spawn(process.execPath, execArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FEDGATE_LOG_LEVEL: process.env['FEDGATE_LOG_LEVEL'] ?? 'info' } });
  const tail: string[] = [];
  const remember = (line: string): void => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
  };
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    try {
      onLog(JSON.parse(line) as Record<string, unknown>);
    } catch {
      remember(line);
    }
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', remember);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  return { name, child, exited, tail: () => tail.join('\n') };
}

export async function stopAll(processes: readonly FedgateProcess[]): Promise<void> {
  for (const process of processes) if (process.child.exitCode === null) process.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const process of processes) if (process.child.exitCode === null) process.child.kill('SIGKILL');
  }, 5000);
  await Promise.all(processes.map((process) => process.exited));
  clearTimeout(timer);
}
