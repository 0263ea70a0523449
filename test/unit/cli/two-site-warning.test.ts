/** A federation of two sites (threshold 2, degree 1) is allowed, but the coordinator and a site accepting it say why it is weak. */
import { describe, expect, it } from 'vitest';
import { compileCoordinatorConfig, compileSiteConfig } from '../../../cli/config/index.js';
import { coordinatorTwoSiteWarning, siteTwoSiteWarning } from '../../../cli/config/two-site-warning.js';

const coordinator = { federation_id: 'demo', tls: { ca: 'ca.pem', cert: 'c.pem', key: 'c.key.pem' }, task: 'task.yaml', rounds: 3 };
const site = { coordinator: '127.0.0.1:7443', tls: { ca: 'ca.pem', cert: 's.pem', key: 's.key.pem' }, data: { format: 'digits' }, accepted_tasks: ['a'.repeat(64)] };

describe('two-site federations', () => {
  it('the coordinator warns when rounds may have two participants', () => {
    const warning = coordinatorTwoSiteWarning(compileCoordinatorConfig({ ...coordinator, participants: { min: 2 } }, 'coordinator.yaml', '/'));
    expect(warning).toMatch(/^coordinator\.yaml: participants\.min is 2: a round of two sites has threshold 2 and degree 1: it tolerates no dropout/);
    expect(warning).toContain("each site learns the other's update exactly");
    expect(coordinatorTwoSiteWarning(compileCoordinatorConfig(coordinator, 'coordinator.yaml', '/'))).toBeUndefined();
    expect(coordinatorTwoSiteWarning(compileCoordinatorConfig({ ...coordinator, participants: { min: 3 } }, 'coordinator.yaml', '/'))).toBeUndefined();
  });

  it('a site warns when its policy accepts rounds of two', () => {
    const warning = siteTwoSiteWarning(compileSiteConfig({ ...site, policy: { min_participants: 2 } }, 'site.yaml', '/'));
    expect(warning).toMatch(/^site\.yaml: policy\.min_participants is 2: this site takes part in rounds of two sites/);
    expect(warning).toContain('Set min_participants: 3 or more');
    expect(siteTwoSiteWarning(compileSiteConfig(site, 'site.yaml', '/'))).toBeUndefined();
  });
});
