import { describe, expect, it } from 'vitest';
import { ConfigError, compileSiteConfig } from '../../../cli/config/index.js';
import { sitePrivacyPolicy } from '../../../cli/config/site-config.js';
import { datasetId } from '../../../participant/daemon/dataset-id.js';

const baseSite = {
  coordinator: '127.0.0.1:7443',
  tls: { ca: 'ca.pem', cert: 's.pem', key: 's.key.pem' },
  data: { format: 'csv', path: 'data.csv' },
  accepted_tasks: ['a'.repeat(64)],
};

function compile(privacy: unknown): ReturnType<typeof compileSiteConfig> {
  return compileSiteConfig({ ...baseSite, privacy }, 'site.yaml', '/srv/site');
}

function failure(privacy: unknown): string {
  try {
    compile(privacy);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('site.yaml privacy: the budget the site enforces', () => {
  it('compiles a budget into a policy that requires DP, on the dataset named by the data source', () => {
    const config = compile({ epsilon: 3, delta: 1e-5 });
    expect(sitePrivacyPolicy(config)).toEqual({ budget: { epsilon: 3, delta: 1e-5 }, requireDp: true, datasetId: datasetId(config.data) });
  });

  it('accepts require_dp alone (no cap; DP rounds are counted) and require_dp: true beside a budget', () => {
    expect(sitePrivacyPolicy(compile({ require_dp: true }))).toMatchObject({ requireDp: true });
    expect(sitePrivacyPolicy(compile({ require_dp: true }))?.budget).toBeUndefined();
    expect(sitePrivacyPolicy(compile({ epsilon: 1, delta: 1e-6, require_dp: true }))).toMatchObject({ requireDp: true, budget: { epsilon: 1, delta: 1e-6 } });
  });

  it('leaves privacy undefined when site.yaml has no privacy key', () => {
    expect(sitePrivacyPolicy(compileSiteConfig(baseSite, 'site.yaml', '/srv/site'))).toBeUndefined();
  });

  it.each([
    [{ epsilon: 0, delta: 1e-5 }, /privacy\.epsilon: expected a finite number > 0.*1 to 8 are usual/],
    [{ epsilon: -1, delta: 1e-5 }, /privacy\.epsilon: expected a finite number > 0/],
    [{ epsilon: '3', delta: 1e-5 }, /privacy\.epsilon: expected a finite number > 0/],
    [{ epsilon: 3, delta: 0 }, /privacy\.delta: expected a number strictly between 0 and 1.*e\.g\. 1e-5/],
    [{ epsilon: 3, delta: 1 }, /privacy\.delta: expected a number strictly between 0 and 1/],
    [{ epsilon: 3, delta: 1.5 }, /privacy\.delta: expected a number strictly between 0 and 1/],
    [{ epsilon: 3 }, /privacy\.delta: is required with epsilon: the budget is the pair \(epsilon, delta\)/],
    [{ delta: 1e-5 }, /privacy\.epsilon: is required with delta/],
    [{ epsilon: 3, delta: 1e-5, require_dp: false }, /privacy\.require_dp: cannot be false with a budget: a round trained without DP noise spends unbounded epsilon/],
    [{}, /privacy: set a budget \{epsilon, delta\} and\/or require_dp: true, or leave privacy out/],
    [{ require_dp: false }, /privacy: set a budget/],
    [{ epsilon: 3, delta: 1e-5, epsilom: 2 }, /privacy: unknown key "epsilom"/],
    [{ epsilon: 3, delta: 1e-5, dataset_id: 'has space' }, /privacy\.dataset_id: expected 1-63 letters/],
  ])('refuses %j with an error naming the key and what to do', (privacy, expected) => {
    expect(failure(privacy)).toMatch(expected);
  });

  it('accepts an infinite epsilon nowhere (YAML .inf)', () => {
    expect(failure({ epsilon: Infinity, delta: 1e-5 })).toMatch(/privacy\.epsilon: expected a finite number > 0/);
  });
});

describe('datasetId: the records a site is charged for, never the task', () => {
  const csv = { format: 'csv', path: '/srv/site/data.csv', label_column: 'label', header: 'auto', test_fraction: 0.2, split_seed: 1 } as const;

  it('is the same whatever the split (the same records, held out or trained on) and differs with the source or the partition', () => {
    const id = datasetId(csv);
    expect(id).toHaveLength(32);
    expect(datasetId({ ...csv, test_fraction: 0.3, split_seed: 9, label_column: 'y' })).toEqual(id);
    expect(datasetId({ ...csv, path: '/srv/site/other.csv' })).not.toEqual(id);
    const partition = { kind: 'iid', count: 3, index: 0, seed: 1 } as const;
    expect(datasetId({ ...csv, partition })).not.toEqual(id);
    expect(datasetId({ ...csv, partition: { ...partition, index: 1 } })).not.toEqual(datasetId({ ...csv, partition }));
  });

  it('follows the name site.yaml gives it instead of the paths', () => {
    expect(datasetId(csv, 'patients-2026')).toEqual(datasetId({ ...csv, path: '/mnt/new/data.csv' }, 'patients-2026'));
    expect(datasetId(csv, 'patients-2026')).not.toEqual(datasetId(csv));
  });
});
