import { describe, expect, it } from 'vitest';
import { brokenImportRules, findImportCycles, topFolder } from '../../../scripts/import-rules.js';

/** [importer, imported, the start of the rule it breaks, or undefined when the import is allowed] */
const TABLE: readonly (readonly [string, string, string | undefined])[] = [
  // crypto/ and model/ import nothing of ours
  ['crypto/prg.ts', 'crypto/bytes.ts', undefined],
  ['crypto/secagg/client.ts', 'crypto/index.ts', undefined],
  ['model/plan.ts', 'model/onnx/codec.ts', undefined],
  ['crypto/buffer-release.ts', 'platform/flagged-builtin.ts', 'crypto/ and model/ import nothing of ours'],
  ['crypto/prg.ts', 'model/weights.ts', 'crypto/ and model/ import nothing of ours'],
  ['model/task.ts', 'crypto/hash.ts', 'crypto/ and model/ import nothing of ours'],
  ['model/plan.ts', 'proto/errors.ts', 'crypto/ and model/ import nothing of ours'],
  ['crypto/prg.ts', 'test/support/secagg-sim.ts', 'crypto/ and model/ import nothing of ours'],
  // platform/ imports nothing of ours, and everyone but crypto/ and model/ may import it
  ['platform/index.ts', 'platform/flagged-builtin.ts', undefined],
  ['platform/flagged-builtin.ts', 'crypto/bytes.ts', 'platform/ imports nothing of ours'],
  ['coordinator/service/heap-compaction.ts', 'platform/index.ts', undefined],
  ['participant/daemon/participant-app.ts', 'platform/index.ts', undefined],
  ['proto/server.ts', 'platform/index.ts', undefined],
  ['cli/main.ts', 'platform/flagged-builtin.ts', undefined],
  ['certs/issue.ts', 'platform/index.ts', undefined],
  // coordinator/ and participant/ never import each other
  ['coordinator/federation/federation.ts', 'participant/index.ts', 'coordinator/ and participant/ never import each other'],
  ['participant/round/round-session.ts', 'coordinator/round/round-messages.ts', 'coordinator/ and participant/ never import each other'],
  ['coordinator/service/coordinator-app.ts', 'proto/server.ts', undefined],
  ['participant/daemon/participant-app.ts', 'crypto/secagg/config-codec.ts', undefined],
  ['coordinator/federation/federation.ts', 'model/server-optimizer.ts', undefined],
  // proto/ imports no role folder
  ['proto/transfer.ts', 'crypto/hash.ts', undefined],
  ['proto/round-codec.ts', 'model/task.ts', undefined],
  ['proto/admin-client.ts', 'coordinator/admin/index.ts', 'proto/ imports no role folder'],
  ['proto/loader.ts', 'participant/index.ts', 'proto/ imports no role folder'],
  ['proto/credentials.ts', 'certs/index.ts', 'proto/ imports no role folder'],
  ['proto/status.ts', 'cli/output.ts', 'proto/ imports no role folder'],
  // only cli/ wires; cli/ goes through the role folders' index.ts
  ['coordinator/service/coordinator-app.ts', 'cli/logging.ts', 'only cli/ wires the pieces'],
  ['certs/ca-directory.ts', 'cli/output.ts', 'only cli/ wires the pieces'],
  ['cli/commands/run.ts', 'coordinator/index.ts', undefined],
  ['cli/commands/run.ts', 'participant/index.ts', undefined],
  ['cli/tls-files.ts', 'certs/index.ts', undefined],
  ['cli/commands/run.ts', 'cli/config/index.ts', undefined],
  ['cli/commands/run.ts', 'crypto/bytes.ts', undefined],
  ['cli/commands/admin.ts', 'proto/admin-client.ts', undefined],
  ['cli/commands/task.ts', 'model/task.ts', undefined],
  ['cli/commands/run.ts', 'coordinator/service/coordinator-app.ts', "cli/ reaches coordinator/, participant/ and certs/ only through the folder's public index.ts"],
  ['cli/commands/admin.ts', 'coordinator/admin/index.ts', "cli/ reaches coordinator/, participant/ and certs/ only through the folder's public index.ts"],
  ['cli/demo/demo-data.ts', 'participant/data/dataset.ts', "cli/ reaches coordinator/, participant/ and certs/ only through the folder's public index.ts"],
  ['cli/commands/certs.ts', 'certs/ca-directory.ts', "cli/ reaches coordinator/, participant/ and certs/ only through the folder's public index.ts"],
  // bench/, scripts/ and test/ may reach anything; the product never reaches them
  ['test/unit/coordinator/state/state.test.ts', 'coordinator/state/ledger.ts', undefined],
  ['test/e2e/crash-recovery.test.ts', 'cli/demo/processes.ts', undefined],
  ['bench/secagg.ts', 'test/support/secagg-sim.ts', undefined],
  ['bench/round.ts', 'participant/data/idx.ts', undefined],
  ['scripts/check-imports.ts', 'scripts/import-rules.ts', undefined],
  ['coordinator/state/ledger.ts', 'test/support/pki.ts', 'the product never imports bench/, scripts/ or test/'],
  ['cli/commands/run.ts', 'bench/round.ts', 'the product never imports bench/, scripts/ or test/'],
  ['vitest.config.ts', 'cli/run.ts', undefined],
];

describe('import rules (DESIGN.md, "Dependency direction")', () => {
  it.each(TABLE)('%s -> %s', (importer, imported, rule) => {
    const broken = brokenImportRules(importer, imported).map((each) => each.description);
    if (rule === undefined) expect(broken).toEqual([]);
    else expect(broken.some((description) => description.startsWith(rule)), `expected "${rule}" among ${JSON.stringify(broken)}`).toBe(true);
  });

  it('names the top-level folder of a repository path', () => {
    expect(topFolder('crypto/secagg/client.ts')).toBe('crypto');
    expect(topFolder('vitest.config.ts')).toBe('');
  });
});

describe('findImportCycles', () => {
  const graph = (entries: Record<string, string[]>): Map<string, string[]> => new Map(Object.entries(entries));

  it('finds no cycle in a layered graph', () => {
    expect(findImportCycles(graph({ 'cli/a.ts': ['coordinator/b.ts', 'crypto/c.ts'], 'coordinator/b.ts': ['crypto/c.ts'], 'crypto/c.ts': [] }))).toEqual([]);
  });

  it('finds a cycle through several files, and a file importing itself', () => {
    const cycles = findImportCycles(graph({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': ['a.ts', 'd.ts'], 'd.ts': [], 'e.ts': ['e.ts'] }));
    expect(cycles).toHaveLength(2);
    expect(cycles).toContainEqual(['a.ts', 'b.ts', 'c.ts']);
    expect(cycles).toContainEqual(['e.ts']);
  });

  it('follows a long import chain without running out of stack', () => {
    const entries: Record<string, string[]> = {};
    for (let i = 0; i < 20_000; i++) entries[`f${i}.ts`] = [`f${i + 1}.ts`];
    entries['f20000.ts'] = ['f0.ts'];
    const cycles = findImportCycles(graph(entries));
    expect(cycles).toHaveLength(1);
    expect(cycles[0]).toHaveLength(20_001);
  });
});
