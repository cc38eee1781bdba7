/**
 * The documentation site as readers see it (`npm run docs`): every guide is on the site, in reading order,
 * with front matter TypeDoc reads; links have readable text; API comments cite papers and guides, not files
 * that only exist in the repository. Fast: reads sources, builds nothing.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const guidesDir = join(root, 'docs', 'guides');
const guides = readdirSync(guidesDir).filter((f) => f.endsWith('.md'));
const read = (p: string) => readFileSync(join(root, p), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'generated' ? [] : sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('documentation site', () => {
  it('lists every guide, getting started first, in the same order as the index', () => {
    const config = JSON.parse(read('typedoc.json')) as { projectDocuments: string[] };
    const listed = config.projectDocuments.map((p) => p.replace('docs/guides/', ''));
    expect([...listed].sort()).toEqual([...guides].sort());
    expect(listed[0]).toBe('getting-started.md');
    const index = read('docs/index.md');
    const linked = [...index.matchAll(/\]\(guides\/([a-z0-9-]+\.md)\)/g)].map((m) => m[1]);
    expect(linked).toEqual(listed);
  });

  it('every guide starts with front matter TypeDoc parses (title, group)', () => {
    for (const g of guides) {
      const text = readFileSync(join(guidesDir, g), 'utf8');
      expect(text, g).toMatch(/^---\ntitle: [^\n]+\ngroup: Guides\n(?:[^\n]*\n)*?---\n/);
    }
  });

  it('links into the API name what they link to, and the index has one heading and no stray pipes', () => {
    for (const f of [...guides.map((g) => `docs/guides/${g}`), 'docs/index.md']) {
      const text = read(f);
      // {@link @strata/core!defineNorm} renders as the raw reference "@strata/core!defineNorm".
      expect(text.match(/\{@link @strata\/[a-z]+![A-Za-z0-9_.]*\}/g) ?? [], f).toEqual([]);
      // An escaped pipe inside {@link} in a table rendered as "| @strata/core".
      expect(text.match(/\{@link [^}]*\\\|[^}]*\}/g) ?? [], f).toEqual([]);
    }
    expect(read('docs/index.md')).not.toMatch(/^# /m); // the page title is the project name already
  });

  it('links to Markdown open rendered pages: reports and results are child documents of their guide', () => {
    for (const g of guides) {
      const text = readFileSync(join(guidesDir, g), 'utf8');
      const front = /^---\n([\s\S]*?)\n---\n/.exec(text)![1]!;
      // Links to other guides are pages already; any other .md would be copied as a raw file.
      for (const c of front.matchAll(/^ {2}"[^"]+": (\S+)$/gm))
        expect(existsSync(join(guidesDir, c[1]!)), `${g}: child document ${c[1]} does not exist`).toBe(true);
      for (const m of text.matchAll(/\]\((\.\.\/[^)#]+\.md)\)/g))
        expect(front, `${g} links ${m[1]} but does not list it under children:`).toContain(`: ${m[1]}`);
    }
    // Package READMEs are the packages' pages on the site and on npm: no relative links out of the package.
    for (const pkg of ['core', 'norms', 'ngpt', 'growth', 'cli'])
      expect(read(`packages/${pkg}/README.md`).match(/\]\(\.\.\/[^)]*\)/g) ?? [], pkg).toEqual([]);
  });

  it('API comments cite papers and guides, not files users never get', () => {
    const bad: string[] = [];
    for (const pkg of ['core', 'norms', 'ngpt', 'growth', 'cli'])
      for (const f of sources(`packages/${pkg}/src`)) {
        const lines = read(f).split('\n');
        lines.forEach((l, i) => {
          // A bare "growth.md" is autolinked to http://growth.md by the site's Markdown renderer.
          if (/\b(SPEC §|reference\/[a-z-]+\.md|(growth|ngpt|deepnorm|backends)\.md)/.test(l))
            bad.push(`${f}:${i + 1}: ${l.trim()}`);
        });
      }
    expect(bad).toEqual([]);
  });
});
