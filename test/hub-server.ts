/**
 * A local stand-in for the Hugging Face Hub, speaking the protocol `huggingface_hub` uses:
 *
 *   HEAD|GET /{org}/{name}/resolve/{revision}/{file}
 *     regular file: 200, ETag "<git blob sha1>", X-Repo-Commit, Content-Length
 *     LFS file:     302 to /blobs/<sha256>, X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit
 *     errors:       401 X-Error-Code RepoNotFound (unknown repo, as the Hub answers anonymous
 *                   callers), 401 GatedRepo (gated repo without the right token), 404
 *                   RevisionNotFound, 404 EntryNotFound
 *   GET /blobs/<sha256>  the LFS bytes, with Range support (206 + Content-Range)
 *
 * Every request is logged; `cutOnce` makes the next GET of a blob send half its bytes and then
 * destroy the socket; `noRange` makes blob GETs ignore Range (200, whole file); `failNext`
 * answers the next requests with 503.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubFile {
  data: Uint8Array;
  /** Stored in LFS (served through a redirect, named by sha256). */
  lfs?: boolean;
  /** Bytes actually served for an LFS file (to simulate corruption); default `data`. */
  served?: Uint8Array;
}

export interface HubRepo {
  /** branch or tag -> commit sha */
  refs: Record<string, string>;
  /** commit sha -> files */
  commits: Record<string, Record<string, HubFile>>;
  /** When set, the repo is gated: requests need `Authorization: Bearer <gatedToken>`. */
  gatedToken?: string;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Git's object id of a blob (what the Hub sends as ETag for regular files). */
export function gitBlobSha1(data: Uint8Array): string {
  return createHash('sha1').update(`blob ${data.byteLength}\0`).update(data).digest('hex');
}

/** A deterministic fake commit sha. */
export function fakeCommit(label: string): string {
  return createHash('sha1').update(label).digest('hex');
}

export class FakeHub {
  readonly repos = new Map<string, HubRepo>();
  readonly requests: LoggedRequest[] = [];
  /** sha256 of blobs whose next GET is cut midway. */
  readonly cutOnce = new Set<string>();
  noRange = false;
  /** Answer this many next requests with 503 (the client should retry). */
  failNext = 0;
  /** Headers that replace the real ones on every resolve answer (a hostile or broken server). */
  resolveHeaders: Record<string, string> = {};
  url = '';
  #server: http.Server;
  #blobs = new Map<string, Uint8Array>();

  constructor() {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  addRepo(id: string, repo: HubRepo): void {
    this.repos.set(id, repo);
    for (const files of Object.values(repo.commits)) {
      for (const f of Object.values(files)) if (f.lfs) this.#blobs.set(sha256(f.data), f.served ?? f.data);
    }
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const path = decodeURIComponent(url.pathname);
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    this.requests.push({ method: req.method ?? '', path, range: header('range'), authorization: header('authorization') });
    if (this.failNext > 0) {
      this.failNext--;
      return this.#fail(res, 503, undefined, 'Service Unavailable');
    }

    const blob = /^\/blobs\/([0-9a-f]{64})$/.exec(path);
    if (blob) return this.#serveBlob(req, res, blob[1]!, header('range'));

    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) return this.#fail(res, 404, undefined, 'not a resolve URL');
    const [repoId, rev, file] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), m[3]!.split('/').map(decodeURIComponent).join('/')];
    const repo = this.repos.get(repoId);
    if (!repo) return this.#fail(res, 401, 'RepoNotFound', `Repository Not Found for url: ${this.url}${url.pathname}.`);
    if (repo.gatedToken !== undefined && header('authorization') !== `Bearer ${repo.gatedToken}`) {
      return this.#fail(
        res,
        401,
        'GatedRepo',
        `Access to model ${repoId} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
      );
    }
    const commit = repo.commits[rev] ? rev : repo.refs[rev];
    if (commit === undefined || !repo.commits[commit]) return this.#fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    const f = repo.commits[commit]![file];
    if (!f) {
      res.setHeader('X-Repo-Commit', commit);
      return this.#fail(res, 404, 'EntryNotFound', `${file} does not exist on "${rev}"`);
    }
    res.setHeader('X-Repo-Commit', commit);
    if (f.lfs) {
      const sha = sha256(f.data);
      res.writeHead(302, {
        Location: `${this.url}/blobs/${sha}`,
        'X-Linked-Etag': `"${sha}"`,
        'X-Linked-Size': String(f.data.byteLength),
        ETag: `W/"redirect-${sha.slice(0, 8)}"`,
        'Content-Length': '0',
        ...this.resolveHeaders,
      });
      return void res.end();
    }
    res.writeHead(200, {
      ETag: `"${gitBlobSha1(f.data)}"`,
      'Content-Length': String(f.data.byteLength),
      'Content-Type': 'application/octet-stream',
      ...this.resolveHeaders,
    });
    res.end(req.method === 'HEAD' ? undefined : Buffer.from(f.data));
  }

  #serveBlob(req: http.IncomingMessage, res: http.ServerResponse, sha: string, range: string | undefined): void {
    const data = this.#blobs.get(sha);
    if (!data) return this.#fail(res, 404, undefined, 'no such blob');
    let start = 0;
    const r = range === undefined || this.noRange ? null : /^bytes=(\d+)-$/.exec(range);
    if (r) {
      start = Number(r[1]);
      if (start >= data.byteLength) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.byteLength}` });
        return void res.end();
      }
      res.writeHead(206, {
        'Content-Length': String(data.byteLength - start),
        'Content-Range': `bytes ${start}-${data.byteLength - 1}/${data.byteLength}`,
      });
    } else {
      res.writeHead(200, { 'Content-Length': String(data.byteLength) });
    }
    const body = Buffer.from(data.subarray(start));
    if (req.method === 'HEAD') return void res.end();
    if (this.cutOnce.delete(sha)) {
      // half the bytes, then the connection drops
      res.write(body.subarray(0, Math.floor(body.byteLength / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  }

  #fail(res: http.ServerResponse, status: number, code: string | undefined, message: string): void {
    if (code !== undefined) res.setHeader('X-Error-Code', code);
    res.setHeader('X-Error-Message', message);
    res.writeHead(status, { 'Content-Type': 'text/plain' });
    res.end(message);
  }
}
