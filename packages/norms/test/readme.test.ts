import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const pkg = fileURLToPath(new URL('..', import.meta.url));

describe('README', () => {
  it('the usage example runs as written', async () => {
    const md = await readFile(join(pkg, 'README.md'), 'utf8');
    const code = /## Use\s+```ts\n([\s\S]*?)```/.exec(md)?.[1];
    expect(code).toBeTruthy();
    // inside the package, so that node resolves @tensorflow/tfjs-core from the workspace's node_modules
    const dir = await mkdtemp(join(pkg, 'test', '.readme-'));
    try {
      const file = join(dir, 'example.mts'); // ESM: the example uses top-level await
      await writeFile(file, code!);
      const tsx = join(pkg, '..', '..', 'node_modules', '.bin', 'tsx');
      const { stdout } = await promisify(execFile)(tsx, ['--tsconfig', join(pkg, 'tsconfig.json'), file], {
        cwd: pkg,
      });
      expect(stdout).toMatch(/α = 2\.632/);
      expect(stdout).toMatch(/\[ 1, 4, 32 \]/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
