/**
 * datasetId (participant/daemon/dataset-id.ts), per data format: the id a site's privacy budget is kept
 * under. Two ways it can fail a site: an id that does not change when the records do (two partitions of
 * a shared file, or another file, charged as one dataset: a budget spent on one blocks the other), and,
 * worse, an id that changes while the records stay (a split setting, a test file, a new release of
 * fedgate): the budget starts over from zero on records already spent. So each field of the source is
 * tried alone, the split settings must leave it alone, and the bytes hashed are pinned.
 * (test/unit/cli/privacy-config.test.ts covers the csv format and site.yaml's dataset name.)
 */
import { describe, expect, it } from 'vitest';
import { encodeFields, toHex, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { datasetId } from '../../../../participant/daemon/dataset-id.js';
import type { PartitionSpec, SiteDataSpec } from '../../../../participant/daemon/site-data.js';

const csv = { format: 'csv', path: '/srv/site/data.csv', label_column: 'label', header: 'auto', test_fraction: 0.2, split_seed: 1 } as const;
const idx = { format: 'idx', images: '/srv/site/train-images', labels: '/srv/site/train-labels', test_fraction: 0.2, split_seed: 1 } as const;
const table = { format: 'table', path: '/srv/site/data.parquet', header: 'auto', test_fraction: 0.2, split_seed: 1 } as const;
const digits = { format: 'digits', test_fraction: 0.2, split_seed: 1 } as const;
const iid: PartitionSpec = { kind: 'iid', count: 4, index: 2, seed: 7 };
const dirichlet: PartitionSpec = { kind: 'dirichlet', alpha: 0.5, count: 4, index: 2, seed: 7 };
const shards: PartitionSpec = { kind: 'shards', shards_per_site: 2, count: 4, index: 2, seed: 7 };

/** The id as documented: H(domain || "source" || fields) over the length-prefixed fields. */
const sourceHash = (...fields: string[]): string => toHex(sha256(encodeFields(['fedgate/v1/dataset', 'source', ...fields].map(utf8))));
const hex = (spec: SiteDataSpec, label?: string): string => toHex(datasetId(spec, label));

describe('datasetId per data format', () => {
  it('hashes exactly the documented fields (an id that changed between releases would start every budget over)', () => {
    expect(hex(csv)).toBe(sourceHash('csv', '/srv/site/data.csv', 'whole'));
    expect(hex(idx)).toBe(sourceHash('idx', '/srv/site/train-images', '/srv/site/train-labels', 'whole'));
    expect(hex(table)).toBe(sourceHash('table', '/srv/site/data.parquet', 'whole'));
    expect(hex(digits)).toBe(sourceHash('digits', 'whole'));
    expect(hex({ ...csv, partition: iid })).toBe(sourceHash('csv', '/srv/site/data.csv', 'iid;count=4;index=2;seed=7;'));
    expect(hex({ ...csv, partition: dirichlet })).toBe(sourceHash('csv', '/srv/site/data.csv', 'dirichlet;count=4;index=2;seed=7;alpha=0.5'));
    expect(hex({ ...csv, partition: shards })).toBe(sourceHash('csv', '/srv/site/data.csv', 'shards;count=4;index=2;seed=7;shards_per_site=2'));
    expect(hex(csv, 'patients-2026')).toBe(toHex(sha256(encodeFields(['fedgate/v1/dataset', 'name', 'patients-2026'].map(utf8)))));
    // Pinned bytes, computed once: a change of the encoding itself (domain, field order) shows here too.
    expect(hex(csv)).toBe('2e37ea71a222e605db411ad47df5ca6a1b1da17a9351cae87b4fdcb8de666858');
    expect(hex(csv, 'patients-2026')).toBe('d013503bec42636caf541d626aef5a0fb04f7a5429ba066a80e22a0358cdaf68');
  });

  it('idx: another image or label file is another dataset; a separate test file or the split is not', () => {
    const id = hex(idx);
    expect(hex({ ...idx, images: '/srv/other/train-images' })).not.toBe(id);
    expect(hex({ ...idx, labels: '/srv/other/train-labels' })).not.toBe(id);
    expect(hex({ ...idx, test_images: '/srv/site/t10k-images', test_labels: '/srv/site/t10k-labels', test_fraction: 0.5, split_seed: 3 })).toBe(id);
  });

  it('table: another file is another dataset; a test file, the split or how it is read is not', () => {
    const id = hex(table);
    expect(hex({ ...table, path: '/srv/other/data.parquet' })).not.toBe(id);
    expect(hex({ ...table, test_path: '/srv/site/test.parquet', test_fraction: 0.4, split_seed: 9, header: 'no', file_format: 'parquet' })).toBe(id);
  });

  it('the format is part of the id: the same path read as csv and as a table are two sources', () => {
    expect(hex({ ...table, path: csv.path })).not.toBe(hex(csv));
  });

  it('digits: each partition is its own dataset, the whole set another', () => {
    expect(hex({ ...digits, partition: iid })).not.toBe(hex(digits));
    expect(hex({ ...digits, partition: { ...iid, index: 3 } })).not.toBe(hex({ ...digits, partition: iid }));
  });

  it('every field of a partition picks other records, so each gives another id', () => {
    const variants: PartitionSpec[] = [
      iid,
      { ...iid, count: 5 },
      { ...iid, index: 1 },
      { ...iid, seed: 8 },
      dirichlet,
      { ...dirichlet, alpha: 0.1 },
      shards,
      { ...shards, shards_per_site: 3 },
    ];
    const ids = variants.map((partition) => hex({ ...csv, partition }));
    expect(new Set(ids).size).toBe(variants.length);
  });
});
