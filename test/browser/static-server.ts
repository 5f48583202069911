/**
 * A local static file server for the browser tests (no internet): URL prefixes map to folders,
 * with or without the COOP/COEP headers that make a page cross-origin isolated (what
 * WebAssembly threads need). Answers HTTP Range requests, as static hosts do.
 */
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
};

export interface StaticServer {
  url: string;
  /** Requests answered, as 'METHOD path status' (the tests read which files were fetched). */
  log: string[];
  close(): Promise<void>;
}

/**
 * Serves `mounts` ({ '/': dir, '/ort/': otherDir }; the longest matching prefix wins) on
 * 127.0.0.1 at a free port. `isolated` adds Cross-Origin-Opener-Policy: same-origin and
 * Cross-Origin-Embedder-Policy: require-corp to every response.
 */
export async function serveStatic(mounts: Record<string, string>, isolated: boolean): Promise<StaticServer> {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const log: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const answer = (status: number, headers: Record<string, string | number> = {}) => {
      log.push(`${req.method} ${path} ${status}`);
      res.writeHead(status, {
        ...(isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {}),
        ...headers,
      });
    };
    const prefix = prefixes.find((p) => path.startsWith(p));
    let file = prefix === undefined ? null : normalize(join(mounts[prefix]!, path.slice(prefix.length)));
    if (file !== null && !file.startsWith(normalize(mounts[prefix!]!) + sep) && file !== normalize(mounts[prefix!]!)) file = null;
    if (file !== null && existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (file === null || !existsSync(file) || !statSync(file).isFile()) {
      answer(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    const size = statSync(file).size;
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start > end) {
        answer(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      answer(206, {
        'Content-Type': type,
        'Content-Length': end - start + 1,
        'Content-Range': `bytes ${start}-${end}/${size}`,
        'Accept-Ranges': 'bytes',
      });
      createReadStream(file, { start, end }).pipe(res);
      return;
    }
    answer(200, { 'Content-Type': type, 'Content-Length': size, 'Accept-Ranges': 'bytes' });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
