export { ConfigError } from './config-error.js';
export { parseDurationMs, parseSizeBytes } from './units.js';
export { readConfigFile, parseConfigText, validateConfig } from './load.js';
export { coordinatorConfigSchema, compileCoordinatorConfig, loadCoordinatorConfig, type CoordinatorConfig, type CoordinatorConfigFile, type CoordinatorFileOptions } from './coordinator-config.js';
export { siteConfigSchema, compileSiteConfig, checkSiteDataFiles, loadSiteConfig, type SiteConfig, type SiteConfigFile } from './site-config.js';
