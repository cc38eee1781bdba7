import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}/src/index.ts`, import.meta.url));

/**
 * One root test command for the whole monorepo. Workspace packages resolve to their TypeScript
 * sources, so tests never run against stale builds. `pool: 'forks'` keeps every test file in its own
 * process: tfjs keeps one global engine per process, and tfjs-node cannot load in worker threads.
 */
export default defineConfig({
  resolve: {
    alias: {
      '@strata/core': src('core'),
      '@strata/norms': src('norms'),
      '@strata/ngpt': src('ngpt'),
      '@strata/growth': src('growth'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    typecheck: {
      enabled: true,
      include: ['packages/*/test/**/*.test-d.ts'],
      tsconfig: './tsconfig.typecheck.json',
    },
  },
});
