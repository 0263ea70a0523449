/**
 * The one federation size the configuration allows but secure aggregation cannot protect: two sites.
 * A round of two has degree k = 1 and threshold t = 2, so it tolerates no dropout (either site leaving
 * aborts it), and each site learns the other's update exactly, as the aggregate minus its own. Both the
 * coordinator and a site that accept such rounds say so once, at start.
 */
import type { CoordinatorConfig } from './coordinator-config.js';
import type { SiteConfigFile } from './site-config.js';

const WHY =
  'a round of two sites has threshold 2 and degree 1: it tolerates no dropout (either site leaving aborts it), and each site learns the other\'s update exactly, as the aggregate minus its own update';

/** The warning a coordinator whose rounds may have two participants logs at start, if any. */
export function coordinatorTwoSiteWarning(config: Pick<CoordinatorConfig, 'coordinator' | 'source'>): string | undefined {
  if (config.coordinator.participants.minimum > 2) return undefined;
  return `${config.source}: participants.min is 2: ${WHY}. Use participants.min: 3 or more unless the two sites may see each other's updates`;
}

/** The warning a site that accepts rounds of two participants logs at start, if any. */
export function siteTwoSiteWarning(config: Pick<SiteConfigFile, 'policy'> & { readonly source: string }): string | undefined {
  if (config.policy.min_participants > 2) return undefined;
  return `${config.source}: policy.min_participants is 2: this site takes part in rounds of two sites, and ${WHY}. Set min_participants: 3 or more to refuse such rounds`;
}
