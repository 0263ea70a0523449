/**
 * The id a site's privacy budget file keeps its spending under (participant/state/privacy-budget.ts):
 * a hash of which records the site trains on, never of the task, since the same records serve every task
 * and every task's rounds must add up on them.
 *
 * What identifies the records: the data source site.yaml names - its format, its file paths (resolved,
 * absolute), and the simulation partition, which picks another share of a shared file. Not the split
 * (test_fraction, split_seed, a separate test file): those move records between training and the
 * held-out part of the same source, which stays one dataset. Not the file contents either: a file that
 * gains records is still the dataset its older records were charged to. Moving the files changes the
 * id, so an operator who may move them names the dataset in site.yaml (privacy.dataset_id) from the
 * start; the id the site uses is in its log at start.
 */
import { encodeFields, utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import type { PartitionSpec, SiteDataSpec } from './site-data.js';

const DOMAIN = 'fedgate/v1/dataset';

/** 32 bytes: H(domain || "name" || label) when site.yaml names the dataset, else H(domain || "source" || source fields). */
export function datasetId(spec: SiteDataSpec, label?: string): Uint8Array {
  if (label !== undefined) return sha256(encodeFields([utf8(DOMAIN), utf8('name'), utf8(label)]));
  return sha256(encodeFields([utf8(DOMAIN), utf8('source'), ...sourceFields(spec).map(utf8)]));
}

function sourceFields(spec: SiteDataSpec): string[] {
  const partition = partitionField(spec.partition);
  switch (spec.format) {
    case 'csv':
      return ['csv', spec.path, partition];
    case 'idx':
      return ['idx', spec.images, spec.labels, partition];
    case 'table':
      return ['table', spec.path, partition];
    case 'digits':
      return ['digits', partition];
  }
}

function partitionField(partition: PartitionSpec | undefined): string {
  if (partition === undefined) return 'whole';
  const shape = partition.kind === 'dirichlet' ? `alpha=${partition.alpha}` : partition.kind === 'shards' ? `shards_per_site=${partition.shards_per_site}` : '';
  return `${partition.kind};count=${partition.count};index=${partition.index};seed=${partition.seed};${shape}`;
}
