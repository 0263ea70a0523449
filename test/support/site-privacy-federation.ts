/**
 * What the privacy-budget federation tests share: one SitePrivacy per site over its own budget store in
 * the federation's work directory (dataset id = the site's records), and a spy on what the sites send the
 * coordinator.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SiteToCoordinator } from '../../coordinator/round/round-messages.js';
import { utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { SitePrivacy } from '../../participant/round/site-privacy.js';
import { PrivacyBudgetStore, type PrivacyBudget } from '../../participant/state/index.js';
import type { AdminFederation } from './admin-federation.js';

/** SitePrivacy for site-1.. in order, each requiring DP with its budget; stores under work/<folder>/site-N. */
export async function openSitePrivacies(h: AdminFederation, folder: string, budgets: readonly PrivacyBudget[], logger: Logger): Promise<SitePrivacy[]> {
  const privacy: SitePrivacy[] = [];
  for (const [index, budget] of budgets.entries()) {
    const store = await PrivacyBudgetStore.open(join(h.work.path, folder, `site-${index + 1}`));
    privacy.push(new SitePrivacy({ budget, requireDp: true, datasetId: sha256(utf8(`site-${index + 1} records`)) }, store, logger));
  }
  return privacy;
}

/** Calls `observe` with every message a site sends `coordinator`, before the coordinator handles it. */
export function spyOnSiteMessages(coordinator: AdminFederation['coordinator'], observe: (siteId: string, message: SiteToCoordinator) => void): void {
  const receive = coordinator.federation.receive.bind(coordinator.federation);
  coordinator.federation.receive = (siteId: string, message: SiteToCoordinator): void => {
    observe(siteId, message);
    receive(siteId, message);
  };
}
