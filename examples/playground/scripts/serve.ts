/**
 * A static file server for the built playground (dist/), used by `npm run playground`, the browser test and
 * the measurement script. It sends the `.wasm` binaries as `application/wasm` (streaming compilation needs it).
 *
 * `--isolated` adds the two cross-origin-isolation headers (COOP/COEP): the page may then use SharedArrayBuffer,
 * and tfjs's wasm backend loads its multi-threaded build, whose shared memory Strata's own wasm kernels cannot
 * use (tfjs's kernels run instead). Without it, wasm runs single-threaded with Strata's kernels.
 *
 *   tsx scripts/serve.ts [--port 8080] [--isolated]
 */
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built page. */
export const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** A running server: its base URL and how to stop it. */
export interface StaticServer {
  /** `http://127.0.0.1:PORT/`. */
  url: string;
  /** Stops the server. */
  close(): Promise<void>;
}

/** Serves `dir` on 127.0.0.1 (`port` 0: any free port); `isolated` sends COOP/COEP (see the file's comment). */
export async function serveStatic(dir = DIST, port = 0, isolated = false): Promise<StaticServer> {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(dir, path.endsWith('/') ? `${path}index.html` : path));
    const headers: Record<string, string> = isolated
      ? {
          'Cross-Origin-Opener-Policy': 'same-origin',
          'Cross-Origin-Embedder-Policy': 'require-corp',
          'Cache-Control': 'no-store',
        }
      : { 'Cache-Control': 'no-store' };
    if (file !== dir && !file.startsWith(dir + sep)) {
      res.writeHead(403, headers).end('forbidden');
      return;
    }
    try {
      if (!(await stat(file)).isFile()) throw new Error('not a file');
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404, headers).end('not found');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // a browser keeps its connections alive: close() alone waits for them
      }),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    await stat(join(DIST, 'index.html'));
  } catch {
    process.stderr.write(
      `error: ${DIST} has no build; run \`npm run build -w @strata-examples/playground\`\n`,
    );
    process.exit(1);
  }
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`error: --port must be an integer in 0..65535, got ${process.argv[i + 1]}\n`);
    process.exit(1);
  }
  const s = await serveStatic(DIST, port, process.argv.includes('--isolated'));
  process.stdout.write(`Strata playground: ${s.url}  (Ctrl-C stops)\n`);
}
