/**
 * Child process of `strata tokenizer train`: runs Hugging Face's Rust BPE trainer (which prints progress
 * lines on stdout that the parent discards) and saves the trained tokenizer. Arguments: the output file,
 * then the training text files.
 */
import { createRequire } from 'node:module';

interface NativeTokenizers {
  Tokenizer: new (
    model: unknown,
  ) => {
    setPreTokenizer(p: unknown): void;
    setPostProcessor(p: unknown): void;
    train(files: string[]): void;
    save(path: string, pretty?: boolean): void;
  };
  BPE: { empty(): unknown };
  byteLevelPreTokenizer(addPrefixSpace?: boolean, useRegex?: boolean): unknown;
  byteLevelProcessing(trimOffsets?: boolean): unknown;
}

const [out, ...files] = process.argv.slice(2);
const lib = createRequire(import.meta.url)('tokenizers') as NativeTokenizers;
const tok = new lib.Tokenizer(lib.BPE.empty());
tok.setPreTokenizer(lib.byteLevelPreTokenizer(false, true));
tok.setPostProcessor(lib.byteLevelProcessing(false));
tok.train(files);
tok.save(out!);
