/** `fedgate certs ...`: the federation's PKI (CA directory, bundles, revocation) as thin wrappers over certs/. */
import type { Command } from 'commander';
import {
  caDirectoryPaths,
  initCertificateAuthority,
  issueBundle,
  revokeCertificate,
  writeCrl,
  type IssuedBundle,
} from '../../certs/index.js';
import { CERTIFICATE_ROLES, isCertificateRole, type CertificateRole } from '../../crypto/certificate-role.js';
import { createOutput } from '../output.js';
import { UsageError } from '../usage-error.js';

interface CommonOptions {
  readonly dir: string;
  readonly json?: boolean;
  readonly days?: string;
}

export function registerCertsCommands(program: Command): void {
  const certs = program.command('certs').description('federation PKI: CA, participant/coordinator/operator bundles, revocation');

  certs
    .command('init')
    .description('create the federation CA in --dir (its private key never leaves that directory)')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('--name <cn>', 'CA common name', 'fedgate federation CA')
    .option('--days <n>', 'validity in days', '3650')
    .option('--json', 'print one JSON object')
    .action(async (options: CommonOptions & { name: string }) => {
      const output = createOutput(options.json === true);
      const { paths, authority } = await initCertificateAuthority({ dir: options.dir, commonName: options.name, ...optionalDays(options.days) });
      output.result(`CA "${options.name}" created in ${paths.directory}\n  certificate: ${paths.certificate}\n  private key: ${paths.privateKey} (mode 0600; keep it offline)\n  CRL:         ${paths.crl}`, {
        directory: paths.directory,
        certificate: paths.certificate,
        crl: paths.crl,
        commonName: options.name,
        serial: authority.serial,
      });
    });

  const issue = certs.command('issue').description('issue a certificate bundle (one folder to copy to its holder)');
  for (const role of ['participant', 'operator'] as const) {
    issue
      .command(`${role} <name>`)
      .description(`issue a ${role} certificate for NAME (the certificate CN)`)
      .requiredOption('--dir <dir>', 'CA directory')
      .option('--out <dir>', 'bundle directory (default DIR/bundles/ROLE/NAME)')
      .option('--days <n>', 'validity in days')
      .option('--json', 'print one JSON object')
      .action(async (name: string, options: CommonOptions & { out?: string }) => {
        printBundle(options, await issueBundle({ dir: options.dir, role, name, ...optionalDays(options.days), ...(options.out === undefined ? {} : { outDir: options.out }) }));
      });
  }
  issue
    .command('coordinator')
    .description('issue the coordinator certificate with DNS/IP subject alternative names')
    .requiredOption('--dir <dir>', 'CA directory')
    .requiredOption('--host <host...>', 'DNS name or IP address participants dial (repeatable)')
    .option('--name <name>', 'certificate CN', 'coordinator')
    .option('--out <dir>', 'bundle directory')
    .option('--days <n>', 'validity in days')
    .option('--json', 'print one JSON object')
    .action(async (options: CommonOptions & { host: string[]; name: string; out?: string }) => {
      printBundle(options, await issueBundle({ dir: options.dir, role: 'coordinator', name: options.name, hosts: options.host, ...optionalDays(options.days), ...(options.out === undefined ? {} : { outDir: options.out }) }));
    });

  certs
    .command('renew <role> <name>')
    .description('issue a fresh certificate and key for the same identity and role before the old one expires')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('--out <dir>', 'bundle directory')
    .option('--days <n>', 'validity in days')
    .option('--host <host...>', 'coordinator only: DNS names / IPs for the renewed certificate (default: those of the current one)')
    .option('--json', 'print one JSON object')
    .action(async (role: string, name: string, options: CommonOptions & { out?: string; host?: string[] }) => {
      const parsedRole = parseRole(role);
      if (options.host !== undefined && parsedRole !== 'coordinator') {
        throw new UsageError(`--host applies to the coordinator certificate only (its subject alternative names); ${parsedRole} certificates carry none`);
      }
      printBundle(
        options,
        await issueBundle({
          dir: options.dir,
          role: parsedRole,
          name,
          renew: true,
          ...optionalDays(options.days),
          ...(options.out === undefined ? {} : { outDir: options.out }),
          ...(options.host === undefined ? {} : { hosts: options.host }),
        }),
      );
    });

  certs
    .command('crl')
    .description('sign a fresh CRL (same revocations, new validity window) and print where it is; run it before the current one expires')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('--days <n>', 'validity of the new CRL in days', '30')
    .option('--json', 'print one JSON object')
    .action(async (options: CommonOptions) => {
      const { crlPath, crlNumber } = await writeCrl({ dir: options.dir, ...optionalDays(options.days) });
      createOutput(options.json === true).result(`CRL #${crlNumber} written to ${crlPath} (${caDirectoryPaths(options.dir).crl}); copy it to the coordinator and sites`, { crlPath, crlNumber });
    });

  certs
    .command('revoke-offline <serial>')
    .description('revoke SERIAL in the CA directory and write a fresh signed CRL (use `fedgate certs revoke` to also drop it from a running coordinator)')
    .requiredOption('--dir <dir>', 'CA directory')
    .option('--json', 'print one JSON object')
    .action(async (serial: string, options: CommonOptions) => {
      const result = await revokeCertificate({ dir: options.dir, serial });
      createOutput(options.json === true).result(
        `${result.alreadyRevoked ? 'already revoked' : 'revoked'} ${result.record.serial}; CRL #${result.crlNumber} written to ${result.crlPath}`,
        { serial: result.record.serial, alreadyRevoked: result.alreadyRevoked, crlPath: result.crlPath, crlNumber: result.crlNumber },
      );
    });
}

function printBundle(options: CommonOptions, bundle: IssuedBundle): void {
  const { certificate } = bundle;
  createOutput(options.json === true).result(
    [
      `${certificate.role} certificate for "${certificate.commonName}" (serial ${certificate.serial}, valid until ${certificate.notAfter.toISOString()})`,
      `  bundle: ${bundle.directory}`,
      `  certificate: ${bundle.certificatePath}`,
      `  private key: ${bundle.privateKeyPath} (mode 0600)`,
      `  CA: ${bundle.caCertificatePath}   CRL: ${bundle.crlPath}`,
    ].join('\n'),
    { directory: bundle.directory, certificate: bundle.certificatePath, privateKey: bundle.privateKeyPath, ca: bundle.caCertificatePath, crl: bundle.crlPath, serial: certificate.serial, role: certificate.role, commonName: certificate.commonName, notAfter: certificate.notAfter },
  );
}

function parseDays(days: string | undefined): number | undefined {
  if (days === undefined) return undefined;
  const value = Number(days);
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`--days must be a positive whole number of days, got ${JSON.stringify(days)}`);
  return value;
}

function optionalDays(days: string | undefined): { validDays?: number } {
  const value = parseDays(days);
  return value === undefined ? {} : { validDays: value };
}

function parseRole(role: string): CertificateRole {
  if (isCertificateRole(role)) return role;
  throw new UsageError(`role must be one of ${CERTIFICATE_ROLES.join(', ')}, got ${JSON.stringify(role)}`);
}
