/**
 * How the operator commands (`fedgate status`, `participants`, `rounds`, `watch`, `export`,
 * `certs revoke`) reach the coordinator's Admin API: flags, or an operator.yaml with the same keys, or
 * both (a flag wins over the file). Paths in the file are relative to the file.
 *
 *   # operator.yaml
 *   coordinator: coordinator.example.org:7443
 *   ca: ops/ca.pem              # the federation CA (ca.pem of the operator bundle)
 *   cert: ops/ops.pem           # operator certificate: `fedgate certs issue operator NAME`
 *   key: ops/ops.key.pem
 *   server_name: coordinator.example.org   # optional: name to check in the coordinator's certificate
 *   timeout: 30s                           # optional: deadline of each call
 *
 * --config defaults to $FEDGATE_OPERATOR_CONFIG when set.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import type { OperatorConnection } from '../../proto/admin-client.js';
import { ConfigError } from '../config/config-error.js';
import { readConfigFile, validateConfig } from '../config/load.js';
import { duration, parseDurationMs } from '../config/units.js';
import { UsageError } from '../usage-error.js';
import { userPath } from '../user-paths.js';

export const OPERATOR_CONFIG_ENV = 'FEDGATE_OPERATOR_CONFIG';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port of the coordinator, such as "coordinator.example.org:7443"');

export const operatorConfigSchema = z.strictObject({
  coordinator: hostPort.optional(),
  ca: z.string().min(1).optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  server_name: z.string().min(1).optional(),
  timeout: duration.optional(),
});

export interface ConnectionFlags {
  readonly config?: string;
  readonly coordinator?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly serverName?: string;
  readonly timeout?: string;
}

/** Adds the connection flags to a command. */
export function withConnectionOptions(command: Command): Command {
  return command
    .option('--config <file>', `operator.yaml with coordinator, ca, cert, key[, server_name, timeout] (default $${OPERATOR_CONFIG_ENV})`)
    .option('--coordinator <host:port>', 'address of the coordinator')
    .option('--ca <file>', 'federation CA certificate (PEM)')
    .option('--cert <file>', 'operator certificate (PEM)')
    .option('--key <file>', 'operator private key (PEM)')
    .option('--server-name <name>', "host name to verify in the coordinator's certificate")
    .option('--timeout <duration>', 'deadline of each call, e.g. 30s');
}

/** Resolves flags and operator.yaml into a connection, reading the PEM files. */
export async function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Promise<OperatorConnection> {
  const configPath = flags.config ?? env[OPERATOR_CONFIG_ENV];
  let file: z.output<typeof operatorConfigSchema> = {};
  let base = userPath('.', env);
  if (configPath !== undefined && configPath !== '') {
    const absoluteConfig = userPath(configPath, env);
    file = validateConfig(operatorConfigSchema, await readConfigFile(absoluteConfig), absoluteConfig);
    base = dirname(absoluteConfig);
  }
  const pick = (flag: string | undefined, fromFile: string | undefined, name: string, key: string, isPath: boolean): string => {
    if (flag !== undefined) return isPath ? userPath(flag, env) : flag;
    if (fromFile !== undefined) return isPath ? resolve(base, fromFile) : fromFile;
    throw new UsageError(`${name} is required (or \`${key}:\` in operator.yaml given with --config or $${OPERATOR_CONFIG_ENV})`);
  };
  const address = pick(flags.coordinator, file.coordinator, '--coordinator', 'coordinator', false);
  if (flags.coordinator !== undefined && !hostPort.safeParse(flags.coordinator).success) {
    throw new UsageError(`--coordinator must be host:port, such as coordinator.example.org:7443; got ${JSON.stringify(flags.coordinator)}`);
  }
  let deadlineMs = file.timeout;
  if (flags.timeout !== undefined) {
    deadlineMs = parseDurationMs(flags.timeout);
    if (deadlineMs === undefined || deadlineMs <= 0) throw new UsageError(`--timeout must be a positive duration such as 30s or 2m; got ${JSON.stringify(flags.timeout)}`);
  }
  const serverName = flags.serverName ?? file.server_name;
  return {
    address,
    caPem: await readPem(pick(flags.ca, file.ca, '--ca', 'ca', true), '--ca / ca', 'CERTIFICATE'),
    certPem: await readPem(pick(flags.cert, file.cert, '--cert', 'cert', true), '--cert / cert', 'CERTIFICATE'),
    keyPem: await readPem(pick(flags.key, file.key, '--key', 'key', true), '--key / key', 'PRIVATE KEY'),
    ...(serverName === undefined ? {} : { serverName }),
    ...(deadlineMs === undefined ? {} : { deadlineMs }),
  };
}

async function readPem(path: string, what: string, label: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`${what}: ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(error)})`}`, { cause: error });
  }
  if (!text.includes('-----BEGIN ') || !text.includes(label)) throw new ConfigError(`${what}: ${path} is not a PEM file holding a ${label}`);
  return text;
}
