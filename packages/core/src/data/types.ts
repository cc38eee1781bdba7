/**
 * A body of text to train or evaluate on, as returned by {@link loadBrownCorpus} and {@link loadTextSource}.
 */
export interface TextSource {
  /** All documents joined by `"\n\n"`. */
  text: string;
  /** The documents (one per file), in a deterministic order. */
  documents: string[];
  /** A human-readable description of where the text came from (for logs and metrics). */
  source: string;
}
