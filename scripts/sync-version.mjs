// After `changeset version`: records the new version of @strata/core in STRATA_VERSION (what checkpoints
// write as `createdBy`) and refreshes package-lock.json. Run by `npm run version-packages`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const { version } = JSON.parse(readFileSync(new URL('packages/core/package.json', root), 'utf8'));
const file = new URL('packages/core/src/checkpoint.ts', root);
const src = readFileSync(file, 'utf8');
const next = src.replace(
  /export const STRATA_VERSION = '[^']*';/,
  `export const STRATA_VERSION = '${version}';`,
);
if (next === src && !src.includes(`STRATA_VERSION = '${version}'`))
  throw new Error('packages/core/src/checkpoint.ts: no `export const STRATA_VERSION = ...;` to update');
writeFileSync(file, next);
execFileSync('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], {
  cwd: new URL('.', root),
  stdio: 'inherit',
});
console.log(`STRATA_VERSION = '${version}', package-lock.json refreshed`);
