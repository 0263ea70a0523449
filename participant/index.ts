// Public API of participant/: the data loaders and the local trainer. (The daemon adds its exports here.)
export * from './data/index.js';
export * from './trainer/index.js';
