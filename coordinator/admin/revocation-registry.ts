/**
 * The coordinator's live set of revoked certificate serials, and its durable record in the state
 * directory (`revocations.json`, written atomically). At start the set is the union of what the caller
 * passes (serials of the CA-verified CRL named in coordinator.yaml) and what earlier revocations through
 * the Admin API recorded, so a revocation survives a restart even if nobody updated tls.crl.
 *
 * One set feeds three consumers: the service edge (AccessControl, checked on every call), the trust
 * anchor handed to each round's SecAggServer (which reads it when it verifies a certificate and when it
 * sends the Graph message, so sites learn the serials: DESIGN.md step 2), and the admin service.
 */
import type { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { z } from 'zod';
import type { TrustAnchor } from '../../crypto/certificate.js';
import { canonicalSerial } from '../../proto/identity.js';
import { readFileIfExists, writeFileAtomic } from '../../platform/index.js';
import { StateError } from '../state/state-error.js';

export const REVOCATIONS_FORMAT_VERSION = 1;
export const REVOCATIONS_FILE_NAME = 'revocations.json';

export interface RevocationEntry {
  /** Canonical serial: upper-case hex without leading zeros. */
  readonly serial: string;
  readonly commonName: string;
  readonly role: string;
  readonly revokedAt: Date;
  /** Number of the CA's CRL that first listed it. */
  readonly crlNumber: string;
}

const fileSchema = z.strictObject({
  formatVersion: z.literal(REVOCATIONS_FORMAT_VERSION),
  revoked: z.array(
    z.strictObject({
      serial: z.string().regex(/^[0-9A-F]+$/, 'upper-case hex'),
      commonName: z.string(),
      role: z.string(),
      revokedAt: z.iso.datetime(),
      crlNumber: z.string().regex(/^\d+$/, 'a decimal integer string'),
    }),
  ),
});

export class RevocationRegistry {
  private current: ReadonlySet<string>;
  private readonly events = new EventEmitter<{ changed: [ReadonlySet<string>] }>();

  private constructor(
    private readonly path: string,
    private entries: readonly RevocationEntry[],
    initial: Iterable<string>,
  ) {
    this.current = new Set([...Array.from(initial, (serial) => canonicalSerial(serial)), ...entries.map((entry) => entry.serial)]);
  }

  /** Reads `stateDirectory/revocations.json` (missing = none) and merges `initial` (e.g. the CRL's serials). */
  static async open(stateDirectory: string, initial: Iterable<string> = []): Promise<RevocationRegistry> {
    const path = join(stateDirectory, REVOCATIONS_FILE_NAME);
    const raw = await readFileIfExists(path);
    return new RevocationRegistry(path, raw === undefined ? [] : parseFile(raw, path), initial);
  }

  /** Every serial refused now (a new Set object after each change; never mutated). */
  get serials(): ReadonlySet<string> {
    return this.current;
  }

  /** Revocations made through the Admin API and recorded in the state directory. */
  get recorded(): readonly RevocationEntry[] {
    return this.entries;
  }

  has(serial: string): boolean {
    return this.current.has(canonicalSerial(serial));
  }

  /**
   * Records `entries` durably, then swaps the live set and notifies listeners. When the write fails
   * nothing changes, so the caller's error leaves the coordinator as it was.
   */
  async record(entries: readonly RevocationEntry[]): Promise<void> {
    const known = new Set(this.entries.map((entry) => entry.serial));
    const added = entries.filter((entry) => !known.has(entry.serial));
    if (added.length > 0) {
      const next = [...this.entries, ...added];
      await writeFileAtomic(this.path, serialize(next));
      this.entries = next;
    }
    const serials = new Set([...this.current, ...entries.map((entry) => entry.serial)]);
    if (serials.size === this.current.size) return;
    this.current = serials;
    this.events.emit('changed', serials);
  }

  onChange(listener: (serials: ReadonlySet<string>) => void): void {
    this.events.on('changed', listener);
  }

  /**
   * A trust anchor whose revocation set is always the current one: a round that is already running
   * sees a revocation at its next certificate check and in its Graph message.
   */
  trustAnchor(caCertificate: X509Certificate): TrustAnchor {
    const registry = this;
    return {
      caCertificate,
      get revokedSerials(): ReadonlySet<string> {
        return registry.current;
      },
    };
  }
}

function parseFile(raw: Buffer, path: string): RevocationEntry[] {
  let parsed: z.infer<typeof fileSchema>;
  try {
    parsed = fileSchema.parse(JSON.parse(raw.toString('utf8')));
  } catch (error) {
    const detail = error instanceof z.ZodError ? error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ') : (error as Error).message;
    throw new StateError(
      'CORRUPT',
      `${path} is not a fedgate revocation record (format version ${REVOCATIONS_FORMAT_VERSION}): ${detail}; restore it from a backup, never delete it (revoked certificates would be accepted again)`,
      { cause: error },
    );
  }
  return parsed.revoked.map((entry) => ({ ...entry, serial: canonicalSerial(entry.serial), revokedAt: new Date(entry.revokedAt) }));
}

function serialize(entries: readonly RevocationEntry[]): string {
  const file: z.infer<typeof fileSchema> = {
    formatVersion: REVOCATIONS_FORMAT_VERSION,
    revoked: entries.map((entry) => ({ ...entry, revokedAt: entry.revokedAt.toISOString() })),
  };
  return `${JSON.stringify(file, null, 1)}\n`;
}
