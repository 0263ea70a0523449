/** participant/state/: what a site persists in its state_dir so a lying coordinator cannot replay it. */
export { SITE_SECRET_FILE, SITE_STATE_FILE, SITE_STATE_FORMAT_VERSION, SiteStateStore, type ChainHead, type SiteStateOptions, type UnmaskedRoundRecord } from './site-state.js';
