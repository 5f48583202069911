/**
 * The built web app (web/dist), served statically with @fastify/static: files only from the web
 * root (no dotfiles), and index.html for client-side routes (GET paths outside /api whose last
 * segment has no extension). Without a build, a small page says how to make one. Unknown /api
 * routes and missing assets are JSON 404s.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { errorBody } from './errors.js';

/** Where `npm run build` of the web app writes: web/dist at the package root (from src/ or dist/ alike). */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/dist', import.meta.url));

const PLACEHOLDER = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>glassbox</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5">
<h1>glassbox</h1>
<p>The server is running, but the workbench (the web app) has not been built: there is no
<code>web/dist/index.html</code>. Build the web app (<code>web/</code>, Vite) into
<code>web/dist</code> and reload this page.</p>
<p>The JSON API is live: <a href="/api/model">/api/model</a>.</p>
</body>
</html>
`;

export function isApiPath(path: string): boolean {
  return path === '/api' || path.startsWith('/api/');
}

/** Registers static serving (or the placeholder page) and the not-found handler. */
export function registerWeb(app: FastifyInstance, webRoot: string | null): { root: string | null } {
  const root = webRoot !== null && existsSync(join(webRoot, 'index.html')) && statSync(webRoot).isDirectory() ? resolve(webRoot) : null;
  if (root) {
    void app.register(fastifyStatic, {
      root,
      prefix: '/',
      wildcard: true,
      index: ['index.html'],
      serveDotFiles: false,
      dotfiles: 'deny',
      redirect: false,
    });
  } else {
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PLACEHOLDER));
  }
  app.setNotFoundHandler(async (req, reply) => {
    const path = req.url.split('?')[0]!;
    const last = path.split('/').pop() ?? '';
    if ((req.method === 'GET' || req.method === 'HEAD') && !isApiPath(path) && !last.includes('.') && !last.includes('%')) {
      if (root) return reply.type('text/html; charset=utf-8').sendFile('index.html', root);
      return reply.type('text/html; charset=utf-8').send(PLACEHOLDER);
    }
    return reply
      .code(404)
      .type('application/json; charset=utf-8')
      .send(errorBody(404, `no route ${req.method} ${path}`));
  });
  return { root };
}
