/**
 * The Hugging Face Hub: models by id (`org/name[@revision]`), downloaded into (or read from) the
 * cache that `huggingface_hub` (Python) shares. env: environment and names; cache: the layout on
 * disk; http: requests, retries and errors; download: the entry point.
 */
export { DEFAULT_ENDPOINT, hfHome, hubCacheDir, hubToken, resolveModelId, validateRepoId } from './env.js';
export { HubError, type HubErrorKind } from './errors.js';
export { repoFolderName } from './cache.js';
export { downloadModel, type DownloadOptions, type DownloadProgress } from './download.js';
