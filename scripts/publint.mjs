#!/usr/bin/env node
/**
 * Package-shape check: runs publint (https://publint.dev) over every published package, against what
 * `npm pack` would publish. Build first (`npx turbo run build`): publint checks that the files `exports`,
 * `main`, `types` and `bin` point at are in the tarball.
 *
 *   node scripts/publint.mjs            # suggestions are printed, warnings and errors fail
 *   node scripts/publint.mjs --strict   # suggestions fail too
 *   node scripts/publint.mjs --json     # one JSON object per package
 *
 * Exit code: 0 when no package has a warning or an error (or a suggestion with --strict), 1 otherwise.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The published packages, in dependency order. */
export const PACKAGES = ['core', 'norms', 'ngpt', 'growth', 'cli'];

const strict = process.argv.includes('--strict');
const json = process.argv.includes('--json');
let failed = false;

for (const name of PACKAGES) {
  const pkgDir = join(root, 'packages', name);
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const { messages, pkg } = await publint({ pkgDir, level: 'suggestion', pack: 'npm', strict: false });
  const failing = messages.filter((m) => m.type === 'error' || m.type === 'warning' || strict);
  if (failing.length) failed = true;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        package: manifest.name,
        ok: failing.length === 0,
        messages: messages.map((m) => ({
          type: m.type,
          code: m.code,
          path: m.path.join('.'),
          text: formatMessage(m, pkg, { color: false }),
        })),
      })}\n`,
    );
    continue;
  }
  const status = failing.length ? 'FAIL' : 'ok';
  process.stdout.write(`${status.padEnd(4)} ${manifest.name}${messages.length ? '' : ' (no messages)'}\n`);
  for (const m of messages)
    process.stdout.write(
      `     ${m.type.padEnd(10)} ${m.code}: ${formatMessage(m, pkg, { color: false }) ?? ''}\n`,
    );
}
process.exitCode = failed ? 1 : 0;
