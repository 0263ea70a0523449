/**
 * Where a path on the command line is relative to: the directory the user ran fedgate from.
 *
 * `npm run fedgate -- ...` (and `npm --prefix REPO run fedgate -- ...`) runs the CLI in the package root,
 * not where the user typed the command; npm passes that directory as INIT_CWD. Every user-supplied path
 * (a flag or argument whose value names a file or directory, and $FEDGATE_OPERATOR_CONFIG) is resolved
 * here, once, before any command runs, so commands and their error messages only ever see absolute paths.
 * Paths inside a config file stay relative to that file (cli/config/).
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Command } from 'commander';

/**
 * The value placeholders that mark an option or argument as a path (`--out <file>`, `--state <dir>`,
 * `--ca <pem>`, `--model <onnx>`, `--write <out>`, `hash <file>`): a new path option is resolved as long
 * as its placeholder says what it is.
 */
export const PATH_PLACEHOLDERS: ReadonlySet<string> = new Set(['file', 'dir', 'pem', 'onnx', 'out']);

/**
 * The directory relative paths given by the user are resolved against: INIT_CWD when npm started this
 * process for a script (npm sets it to the directory `npm run` was typed in), else the working directory.
 * INIT_CWD is inherited by every process an npm script starts, so it is trusted only while we still run
 * where npm put us, the package root (the directory of $npm_package_json); a fedgate started by such a
 * process in another directory (a test, the demo) resolves against its own working directory.
 */
export function userDirectory(env: NodeJS.ProcessEnv = process.env, workingDirectory: string = process.cwd()): string {
  const initCwd = env['INIT_CWD'];
  if (initCwd === undefined || initCwd === '' || !isAbsolute(initCwd)) return workingDirectory;
  const packageJson = env['npm_package_json'];
  if (packageJson !== undefined && packageJson !== '' && resolve(dirname(packageJson)) !== resolve(workingDirectory)) return workingDirectory;
  return initCwd;
}

/** `path` as an absolute path, relative ones taken from the user's directory (see userDirectory). */
export function userPath(path: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(userDirectory(env), path);
}

/** Whether an option's or argument's placeholder (`<file>`, `[dir]`, `<pem...>`) marks a path. */
export function isPathPlaceholder(flagsOrName: string): boolean {
  const placeholder = /[<[]([A-Za-z-]+)(?:\.\.\.)?[>\]]\s*$/.exec(flagsOrName)?.[1] ?? flagsOrName;
  return PATH_PLACEHOLDERS.has(placeholder);
}

/**
 * Installs the hook that rewrites every path option and argument of the command about to run into an
 * absolute path (against userDirectory(env)). Call once on the root program; commander runs the hook
 * for every subcommand.
 */
export function resolveUserPathsBeforeAction(program: Command, env: NodeJS.ProcessEnv = process.env): void {
  program.hook('preAction', (_root, command) => {
    const absolute = (value: unknown): unknown =>
      typeof value === 'string' ? userPath(value, env) : Array.isArray(value) ? value.map((item) => (typeof item === 'string' ? userPath(item, env) : item)) : value;
    for (const option of command.options) {
      if (!isPathPlaceholder(option.flags)) continue;
      const name = option.attributeName();
      const value: unknown = command.getOptionValue(name);
      if (value === undefined) continue;
      command.setOptionValueWithSource(name, absolute(value), command.getOptionValueSource(name) ?? 'cli');
    }
    command.registeredArguments.forEach((argument, index) => {
      if (isPathPlaceholder(argument.name()) && index < command.processedArgs.length) {
        command.processedArgs[index] = absolute(command.processedArgs[index]);
      }
    });
  });
}
