/**
 * The Node-only part of the data layer: user text files and folders, record formats (JSONL, Parquet, …) and the
 * on-disk token cache. Not part of the browser entry.
 *
 * @module
 */
export { binaryReason, firstInvalidUtf8, loadTextSource, TEXT_EXTENSIONS } from './files.js';
export {
  type DataFormat,
  detectFormat,
  type RecordOptions,
  readRecords,
  recordFiles,
} from './records.js';
export {
  dataFingerprint,
  defaultTokenCacheDir,
  documentSeparator,
  pieces,
  type TokenizedSource,
  type TokenizeOptions,
  type TokenSourceSpec,
  tokenizerFingerprint,
  tokenizeSource,
} from './token-cache.js';
