/**
 * The guides' examples are executed here, so the docs cannot rot.
 *
 * In `docs/guides/*.md`, a fenced block whose info string carries the word `test` is run:
 * - ```` ```ts test ````: written to a temporary `.ts` file and run with tsx
 *   (`--tsconfig packages/cli/tsconfig.json`, so `@strata/*` resolve to the TypeScript sources); it fails on a
 *   non-zero exit.
 * - ```` ```sh test ````: each line `strata ...` runs the built CLI (`packages/cli/dist/bin.js`); lines ending in
 *   `\` continue; `#` starts a comment; any other command is refused (keep testable blocks to `strata` calls).
 * - ```` ```<lang> file=NAME ````: not run, but written to NAME first, so the commands can use it (e.g. a plugin).
 *
 * Each guide runs in its own temporary directory under `.tmp/` at the repository root (so that files written
 * there resolve packages from the repository's `node_modules`), which also holds `corpus.txt`, a small text
 * file the CLI examples train on. Blocks run in document order; up to four guides run at a time. The
 * generated CLI reference must equal what `scripts/gen-cli-docs.ts` produces. `STRATA_DOCS_VERBOSE=1` prints
 * each example's time and output.
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_DOC_PATH, renderCliReference } from '../../../scripts/gen-cli-docs.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const guidesDir = join(root, 'docs', 'guides');
const bin = join(root, 'packages', 'cli', 'dist', 'bin.js');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const tsconfig = join(root, 'packages', 'cli', 'tsconfig.json');
mkdirSync(join(root, '.tmp'), { recursive: true });
const work = mkdtempSync(join(root, '.tmp', 'docs-examples-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CORPUS =
  'The Fulton County Grand Jury said Friday an investigation of recent primary elections produced no evidence ' +
  'that any irregularities took place. The jury further said in term-end presentments that the City Executive ' +
  'Committee, which had over-all charge of the election, deserves the praise and thanks of the City of Atlanta. ';

/** One fenced block of a guide. */
interface DocBlock {
  guide: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  test: boolean;
  file?: string;
  code: string;
}

/** Extracts the fenced code blocks of a Markdown text (``` or ~~~ fences, info string kept). */
function extractBlocks(guide: string, markdown: string): DocBlock[] {
  const blocks: DocBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^`]*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const info = open[3]!.trim().split(/\s+/).filter(Boolean);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      if (lines[j]!.trim().startsWith(fence) && lines[j]!.trim().replace(/[`~]/g, '') === '') break;
      body.push(lines[j]!);
    }
    const file = info.find((w) => w.startsWith('file='))?.slice(5);
    blocks.push({
      guide,
      line: i + 1,
      lang: info[0] ?? '',
      test: info.includes('test'),
      ...(file ? { file } : {}),
      code: `${body.join('\n')}\n`,
    });
    i = j;
  }
  return blocks;
}

/** Splits a command line into words, honouring single and double quotes. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let any = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      any = true;
    } else if (/\s/.test(ch)) {
      if (cur || any) words.push(cur);
      cur = '';
      any = false;
    } else cur += ch;
  }
  if (quote) throw new Error(`unterminated quote in: ${line}`);
  if (cur || any) words.push(cur);
  return words;
}

/** The `strata` invocations of a shell block, as argument lists. */
function strataCommands(code: string): string[][] {
  const joined = code.replace(/\\\n/g, ' ');
  const out: string[][] = [];
  for (const raw of joined.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const words = shellWords(line);
    if (words[0] !== 'strata')
      throw new Error(`testable shell blocks may only run \`strata\`; found: ${line}`);
    out.push(words.slice(1));
  }
  return out;
}

interface RunResult {
  code: number | null;
  out: string;
  ms: number;
}

function run(cmd: string, args: string[], cwd: string): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, CI: 'true', TF_CPP_MIN_LOG_LEVEL: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: performance.now() - t0 });
    });
  });
}

const guides = existsSync(guidesDir)
  ? readdirSync(guidesDir)
      .filter((f) => f.endsWith('.md'))
      .sort()
  : [];
const allBlocks = guides.flatMap((g) => extractBlocks(g, readFileSync(join(guidesDir, g), 'utf8')));

/** Runs every testable block of one guide, in order, in its own directory; returns a log per block. */
async function runGuide(guide: string): Promise<{ where: string; result: RunResult }[]> {
  const dir = join(work, guide.replace(/\.md$/, ''));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'corpus.txt'), CORPUS.repeat(40));
  const log: { where: string; result: RunResult }[] = [];
  for (const [k, b] of allBlocks.filter((x) => x.guide === guide).entries()) {
    const where = `${guide}:${b.line}`;
    if (b.file) {
      writeFileSync(join(dir, b.file), b.code);
      continue;
    }
    if (!b.test) continue;
    if (b.lang === 'ts' || b.lang === 'typescript') {
      const file = join(dir, `example-${k}-line${b.line}.ts`);
      writeFileSync(file, b.code);
      const result = await run(tsx, ['--tsconfig', tsconfig, file], dir);
      log.push({ where, result });
      if (result.code !== 0) return log;
    } else if (b.lang === 'sh' || b.lang === 'bash' || b.lang === 'shell') {
      for (const args of strataCommands(b.code)) {
        const result = await run(process.execPath, [bin, ...args], dir);
        log.push({ where: `${where} strata ${args.join(' ')}`, result });
        if (result.code !== 0) return log;
      }
    } else throw new Error(`${where}: cannot run a \`${b.lang}\` block marked test`);
  }
  return log;
}

describe('docs', () => {
  it('the CLI reference (docs/guides/cli.md) is the one scripts/gen-cli-docs.ts generates', () => {
    const committed = existsSync(CLI_DOC_PATH) ? readFileSync(CLI_DOC_PATH, 'utf8') : '';
    expect(
      committed === renderCliReference(),
      'docs/guides/cli.md is stale: run `node_modules/.bin/tsx scripts/gen-cli-docs.ts`',
    ).toBe(true);
  });

  it('parses fences, shell words and continuation lines', () => {
    const md = [
      '# t',
      '```ts test',
      'a',
      '```',
      '',
      '```sh',
      'x',
      '```',
      '```js file=p.mjs',
      'p',
      '```',
    ].join('\n');
    expect(extractBlocks('g.md', md)).toEqual([
      { guide: 'g.md', line: 2, lang: 'ts', test: true, code: 'a\n' },
      { guide: 'g.md', line: 6, lang: 'sh', test: false, code: 'x\n' },
      { guide: 'g.md', line: 9, lang: 'js', test: false, file: 'p.mjs', code: 'p\n' },
    ]);
    expect(strataCommands('# c\nstrata a --p "the jury" \\\n  --q 1 # note\n')).toEqual([
      ['a', '--p', 'the jury', '--q', '1'],
    ]);
    expect(() => strataCommands('rm -rf /')).toThrow(/may only run `strata`/);
  });

  it('testable blocks are in a language the harness runs', () => {
    const testable = new Set(allBlocks.filter((b) => b.test).map((b) => b.guide));
    expect(testable.size).toBeGreaterThan(0);
    for (const b of allBlocks.filter((x) => x.test))
      expect(['ts', 'typescript', 'sh', 'bash', 'shell'], `${b.guide}:${b.line}`).toContain(b.lang);
  });

  const runnable = guides.filter((g) => allBlocks.some((b) => b.guide === g && b.test));
  it.skipIf(!existsSync(bin))(
    `runs the examples of ${runnable.length} guides (ts with tsx, sh against the built CLI)`,
    async () => {
      // A few guides at a time: each example is a separate Node process with its own wasm heap.
      const logs: Awaited<ReturnType<typeof runGuide>>[] = new Array(runnable.length);
      let next = 0;
      const worker = async () => {
        while (next < runnable.length) {
          const i = next++;
          logs[i] = await runGuide(runnable[i]!);
        }
      };
      await Promise.all(Array.from({ length: Math.min(4, Math.max(2, availableParallelism())) }, worker));
      const failures: string[] = [];
      for (const log of logs)
        for (const { where, result } of log)
          if (result.code !== 0) failures.push(`${where} exited ${result.code}:\n${result.out.slice(-3000)}`);
      expect(failures, failures.join('\n\n')).toEqual([]);
      const ran = logs.flat();
      expect(ran.length).toBeGreaterThan(0);
      if (process.env.STRATA_DOCS_VERBOSE === '1')
        for (const { where, result } of ran)
          console.log(`${(result.ms / 1000).toFixed(1).padStart(5)} s  ${where}\n${result.out.trim()}\n`);
    },
    180_000,
  );
});
