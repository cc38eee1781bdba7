/**
 * Data: the embedded default corpus (Brown), user text files and folders, tokenizers, and the
 * train/validation dataset with stateless batch sampling. Pure Node and typed arrays (no tensors).
 *
 * @module
 */

export {
  BROWN_PACKAGE,
  type BrownCorpusOptions,
  brownToPlainText,
  detokenize,
  loadBrownCorpus,
  resolveBrownCorpusDir,
} from './brown.js';
export {
  type DatasetStats,
  type DatasetText,
  type Segment,
  TextDataset,
  type TextDatasetOptions,
  type TokenBatch,
} from './dataset.js';
export { binaryReason, firstInvalidUtf8, loadTextSource, TEXT_EXTENSIONS } from './files.js';
export {
  byteLevelAlphabet,
  GPT2_EOS,
  gpt2Tokenizer,
  gpt2TokenizerJSON,
  HFTokenizer,
  type HFTokenizerRecord,
  loadTokenizerFile,
  type SpecialTokenRecord,
  sha256Text,
  TOKENIZER_FILE,
} from './hf-tokenizer.js';
export { MarkovDataset, type MarkovOptions } from './markov.js';
export {
  type DataFormat,
  detectFormat,
  type RecordOptions,
  readRecords,
  recordFiles,
} from './records.js';
export {
  brownPosPairs,
  encodePairs,
  loadPairsFile,
  MaskedLMDataset,
  type MaskedLMOptions,
  packSeq2Seq,
  parsePairs,
  Seq2SeqDataset,
  type Seq2SeqDatasetOptions,
  type Seq2SeqExample,
  type Seq2SeqShape,
  SpanCorruptionDataset,
  type SpanCorruptionOptions,
  simplifyBrownTag,
  type TaskBatch,
  type TextPair,
} from './tasks.js';
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
export {
  ByteSpecialTokenizer,
  ByteTokenizer,
  createTokenizer,
  listTokenizerKinds,
  resolveTokenizer,
  SPECIAL_TOKENS,
  type SpecialTokenIds,
  type StreamDecoder,
  type TokenArray,
  type Tokenizer,
  tokenizerFromJSON,
} from './tokenizer.js';
export type { TextSource } from './types.js';
