/**
 * Data: the default corpus (Brown), tokenizers, and the train/validation dataset with stateless batch
 * sampling, typed arrays only (no tensors). These modules run in a browser too: the functions that read files
 * (the corpus, a tokenizer.json, a pairs file) fail there with a clear error. Reading user files and folders
 * and the token cache are Node-only (`data/node.ts`).
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
export {
  type AddedToken,
  appendAddedTokens,
  byteLevelAlphabet,
  GPT2_EOS,
  gpt2Tokenizer,
  gpt2TokenizerJSON,
  HFTokenizer,
  type HFTokenizerRecord,
  loadTokenizerFile,
  type SpecialTokenRecord,
  sha256Text,
  specialAddedToken,
  TOKENIZER_FILE,
  withAddedTokens,
} from './hf-tokenizer.js';
export { MarkovDataset, type MarkovOptions } from './markov.js';
export {
  brownPosPairs,
  describeTokenizer,
  encodePairs,
  loadPairsFile,
  MASKED_LM_ROLES,
  MaskedLMDataset,
  type MaskedLMOptions,
  ordinaryTokenIds,
  packSeq2Seq,
  parsePairs,
  type RequiredSpecials,
  requireSpecials,
  SEQ2SEQ_ROLES,
  Seq2SeqDataset,
  type Seq2SeqDatasetOptions,
  type Seq2SeqExample,
  type Seq2SeqShape,
  SPAN_ROLES,
  SpanCorruptionDataset,
  type SpanCorruptionOptions,
  type SpecialRole,
  simplifyBrownTag,
  specialTokenIds,
  type TaskBatch,
  type TextPair,
} from './tasks.js';
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
