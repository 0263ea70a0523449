/**
 * Paths on the command line are the user's: `npm run fedgate -- ...` runs in the package root, so every
 * path flag and argument is resolved against INIT_CWD (the directory npm was run from), and errors name
 * the absolute path that was tried.
 */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram, runCli } from '../../../cli/run.js';
import { isPathPlaceholder, userDirectory, userPath } from '../../../cli/user-paths.js';
import { DIGITS_MLP_TASK } from '../../support/in-memory-federation.js';
import { createTempDirectory, type TempDirectory } from '../../support/pki.js';

const repository = process.cwd();
let user: TempDirectory;

/** The environment npm gives a script run from `directory`: INIT_CWD there, the script itself in the package root. */
const npmEnv = (directory: string): NodeJS.ProcessEnv => ({ ...process.env, INIT_CWD: directory, npm_package_json: join(repository, 'package.json') });

function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => text };
}

beforeAll(async () => {
  user = await createTempDirectory('fedgate-user-dir-');
  await writeFile(join(user.path, 'task.yaml'), JSON.stringify(DIGITS_MLP_TASK));
});

afterAll(async () => {
  await user?.remove();
});

describe('the user directory', () => {
  it('is INIT_CWD while the CLI runs where npm started it, the working directory otherwise', () => {
    expect(userDirectory({ INIT_CWD: '/home/ops/fed', npm_package_json: '/srv/fedgate/package.json' }, '/srv/fedgate')).toBe('/home/ops/fed');
    expect(userDirectory({ INIT_CWD: '/home/ops/fed' }, '/srv/fedgate')).toBe('/home/ops/fed');
    expect(userDirectory({}, '/srv/fedgate')).toBe('/srv/fedgate');
    expect(userDirectory({ INIT_CWD: '' }, '/srv/fedgate')).toBe('/srv/fedgate');
    // Inherited by a fedgate that a script started elsewhere (a test, the demo): its own directory counts.
    expect(userDirectory({ INIT_CWD: '/home/ops/fed', npm_package_json: '/srv/fedgate/package.json' }, '/tmp/run-1')).toBe('/tmp/run-1');
    expect(userPath('out/model.onnx', { INIT_CWD: '/home/ops/fed', npm_package_json: join(process.cwd(), 'package.json') })).toBe('/home/ops/fed/out/model.onnx');
    expect(userPath('/etc/fedgate/ca.pem', {})).toBe('/etc/fedgate/ca.pem');
  });

  it('recognises path placeholders', () => {
    expect(['--out <file>', '--state <dir>', '--ca <pem>', '--model <onnx>', '--write <out>', 'file', '--config [file]'].map(isPathPlaceholder)).toEqual([true, true, true, true, true, true, true]);
    expect(['--host <host...>', '--round <n>', '--json', 'serial-or-site', 'name', '--timeout <duration>'].map(isPathPlaceholder)).toEqual([false, false, false, false, false, false]);
  });
});

/** Every leaf command of the program, with its full name path. */
function leafCommands(command: Command, path: string[] = []): { command: Command; path: string[] }[] {
  if (command.commands.length === 0) return [{ command, path }];
  return command.commands.flatMap((child) => leafCommands(child, [...path, child.name()]));
}

describe('every path flag and argument of every command', () => {
  const env = npmEnv('/home/ops/fed');
  const program = buildProgram(env);
  const leaves = leafCommands(program);

  it('covers the paths the issue names', () => {
    const pathFlags = new Set(leaves.flatMap(({ command }) => command.options.filter((option) => isPathPlaceholder(option.flags)).map((option) => option.long)));
    for (const flag of ['--out', '--config', '--state', '--ca', '--crl', '--cert', '--key', '--dir', '--task', '--model', '--write']) expect(pathFlags).toContain(flag);
  });

  it.each(leaves.map(({ command, path }) => [path.join(' '), command, path] as const))('%s resolves them against INIT_CWD', async (_name, command, path) => {
    let seen: { args: unknown[]; options: Record<string, unknown> } | undefined;
    command.action((...received: unknown[]) => {
      const args = received.slice(0, command.registeredArguments.length);
      seen = { args, options: command.opts() };
    });
    const argv: string[] = [...path];
    const expectedArgs: unknown[] = [];
    for (const argument of command.registeredArguments) {
      const value = isPathPlaceholder(argument.name()) ? `rel/${argument.name()}` : 'value';
      argv.push(value);
      expectedArgs.push(isPathPlaceholder(argument.name()) ? join('/home/ops/fed', value) : value);
    }
    const expectedOptions: Record<string, unknown> = {};
    for (const option of command.options) {
      if (option.negate || (!option.required && !option.optional)) continue;
      const name = option.attributeName();
      if (isPathPlaceholder(option.flags)) {
        argv.push(option.long ?? '', `rel/${name}`);
        expectedOptions[name] = join('/home/ops/fed', 'rel', name);
      } else if (option.mandatory) {
        argv.push(option.long ?? '', '1');
      }
    }
    program.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await program.parseAsync(argv, { from: 'user' });
    expect(seen).toBeDefined();
    expect(seen?.args).toEqual(expectedArgs);
    expect(seen?.options).toMatchObject(expectedOptions);
  });
});

describe('fedgate run from another directory by npm', () => {
  it('reads and writes task files in the user directory, and names the absolute path it tried', async () => {
    const stderr = capture();
    expect([await runCli(['task', 'hash', 'task.yaml', '--write', 'pinned.json', '--json'], stderr.stream, npmEnv(user.path)), stderr.text()]).toEqual([0, '']);
    expect(JSON.parse(await readFile(join(user.path, 'pinned.json'), 'utf8'))).toMatchObject({ model: { kind: 'mlp' } });

    const missing = capture();
    expect(await runCli(['task', 'hash', 'missing.yaml'], missing.stream, npmEnv(user.path))).toBe(1);
    expect(missing.text()).toContain(`task document ${join(user.path, 'missing.yaml')} cannot be read (ENOENT)`);

    const state = capture();
    expect(await runCli(['coordinator', '--config', 'nowhere/coordinator.yaml'], state.stream, npmEnv(user.path))).toBe(1);
    expect(state.text()).toContain(join(user.path, 'nowhere', 'coordinator.yaml'));
  });

  it('`npm --prefix REPO run fedgate` from outside the repository resolves against that directory', () => {
    const result = spawnSync('npm', ['--prefix', repository, 'run', 'fedgate', '--', 'task', 'hash', 'task.yaml', '--write', 'npm-pinned.json', '--json'], {
      cwd: user.path,
      encoding: 'utf8',
      // A user's shell: none of the npm_* variables of the npm that runs this test.
      env: Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(npm_|INIT_CWD$)/i.test(name))),
      timeout: 60_000,
    });
    // The one config warning npm 11 prints is for .npmrc's onnxruntime-node-install key, which is read by
    // onnxruntime-node's install script, not by npm (README "GPU (CUDA)"): nothing else.
    const unknown = result.stderr.split('\n').filter((line) => /Unknown (project|env|user) config/.test(line));
    expect(unknown.filter((line) => !line.includes('"onnxruntime-node-install"'))).toEqual([]);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as { taskHash: string }).toMatchObject({ taskHash: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown });
    expect(spawnSync('test', ['-f', join(user.path, 'npm-pinned.json')]).status).toBe(0);
  });
});
