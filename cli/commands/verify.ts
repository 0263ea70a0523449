/** `fedgate verify`: offline verification of a coordinator's ledger (see coordinator/audit/verify-ledger.ts). */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { FedgateError } from '../../platform/index.js';
import { verifyCertificateRevocationList } from '../../certs/index.js';
import { verifyLedger } from '../../coordinator/index.js';
import { pinTask } from '../../model/task-pin.js';
import { createOutput } from '../output.js';
import { terminalSafe } from '../terminal-text.js';
import { ConfigError } from '../config/config-error.js';
import { readTaskFile } from '../task-file.js';

/** The ledger failed verification (the report names the round and the check). */
export class LedgerInvalidError extends FedgateError {
  constructor(message: string) {
    super('DATA_LOSS', message, { reason: 'LEDGER_INVALID' });
    this.name = 'LedgerInvalidError';
  }
}

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('verify a ledger offline: hash chain, the chain of commit records from the task\'s initial model, commit signatures and quorum, certificates at commit time, recomputed models')
    .requiredOption('--state <dir>', "the coordinator's state directory (a copy is fine)")
    .requiredOption('--ca <pem>', 'the federation CA certificate')
    .option('--crl <pem>', 'the CA-signed CRL; signatures by certificates revoked before their commit fail')
    .option('--no-recompute', 'skip recomputing each model from the stored aggregate (when models/ was not copied)')
    .option('--task <file>', "the federation's task document, when models/ (where the coordinator keeps it) was not copied")
    .option('--model <onnx>', 'the forward ONNX model of a --task with model.kind onnx')
    .option('--json', 'print one JSON object')
    .action(async (options: { state: string; ca: string; crl?: string; recompute: boolean; task?: string; model?: string; json?: boolean }) => {
      const caPem = await readFile(options.ca, 'utf8').catch((error: unknown) => {
        throw new ConfigError(`--ca ${options.ca} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      });
      let revocations: { serial: string; revokedAt: Date }[] = [];
      if (options.crl !== undefined) {
        const crlPem = await readFile(options.crl, 'utf8').catch((error: unknown) => {
          throw new ConfigError(`--crl ${options.crl} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
        });
        // An expired CRL still tells what was revoked when: verify its signature, not its freshness.
        const crl = verifyCertificateRevocationList(crlPem, caPem, { checkFreshness: false }).entries;
        revocations = crl.map((entry) => ({ serial: entry.serial, revokedAt: entry.revokedAt }));
      }
      const task = options.task === undefined ? undefined : await readTaskFile(options.task, options.model);
      const result = await verifyLedger({
        stateDirectory: options.state,
        caPem,
        revocations,
        recomputeModels: options.recompute,
        ...(task === undefined ? {} : { task: { document: pinTask(task.task, task.forwardModel), ...(task.forwardModel === undefined ? {} : { forwardModel: task.forwardModel }) } }),
      });
      const output = createOutput(options.json === true);
      if (result.ok) {
        output.result(`ledger OK: ${result.rounds} rounds, ${result.signaturesChecked} commit signatures verified, head ${result.headHash}`, { ...result });
        return;
      }
      // The problem quotes names from the ledger (certificate CNs): printed escaped.
      output.result(`ledger INVALID at round ${result.round}: ${terminalSafe(result.problem)}`, { ...result });
      throw new LedgerInvalidError(`ledger verification failed at round ${result.round}`);
    });
}
