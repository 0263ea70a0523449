// Public API of participant/ (cli/ imports nothing else of it): the daemon, the data loaders and the local trainer.
export { startParticipant, PARTICIPANT_VERSION, type LocalUpdateEvent, type ParticipantAppOptions, type RunningParticipant } from './daemon/participant-app.js';
export type { SiteDataSpec } from './daemon/site-data.js';
export { PrivacyBudgetStore, SiteStateStore } from './state/index.js';
export { REPORT_DELTA, SitePrivacy, type SitePrivacyPolicy } from './round/site-privacy.js';
export { datasetId } from './daemon/dataset-id.js';
export * from './data/index.js';
export * from './trainer/index.js';
export { SiteMetrics, type SiteMetricsOptions } from './metrics/site-metrics.js';
