/** Hub downloads against a local server that answers like huggingface.co (test/hub-server.ts). */
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { downloadModel, hubCacheDir, HubError, resolveModelId, repoFolderName, type DownloadProgress } from '../src/io/hub/index.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { openCheckpoint } from '../src/io/index.js';
import { loadFromDirectory } from '../src/model/pretrained.js';
import { FakeHub, fakeCommit, gitBlobSha1, sha256, type HubFile } from './hub-server.js';

const GPT2 = fileURLToPath(new URL('./fixtures/hf/gpt2/', import.meta.url));
const TOK = fileURLToPath(new URL('./fixtures/tiny-bpe/', import.meta.url));
const read = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

const config = read(join(GPT2, 'config.json'));
const generationConfig = read(join(GPT2, 'generation_config.json'));
const weights = read(join(GPT2, 'model.safetensors'));
const tokenizerJson = read(join(TOK, 'tokenizer.json'));
const tokenizerConfig = read(join(TOK, 'tokenizer_config.json'));

/** A safetensors file of float32 vectors. */
function safetensors(tensors: Record<string, number[]>): Uint8Array {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, v] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: [v.length], data_offsets: [off, off + 4 * v.length] };
    off += 4 * v.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + off);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let p = 8 + json.length;
  for (const v of Object.values(tensors)) {
    for (const x of v) {
      dv.setFloat32(p, x, true);
      p += 4;
    }
  }
  return out;
}

const shard1 = safetensors({ 'a.weight': [1, 2, 3], 'b.weight': [4, 5] });
const shard2 = safetensors({ 'c.weight': [6, 7, 8, 9] });
const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';
const index = new TextEncoder().encode(
  JSON.stringify({ metadata: { total_size: 36 }, weight_map: { 'a.weight': SHARD1, 'b.weight': SHARD1, 'c.weight': SHARD2 } }),
);

const C_MAIN = fakeCommit('tiny-gpt2 main');
const C_V1 = fakeCommit('tiny-gpt2 v1');
const C_SHARDED = fakeCommit('sharded main');
const C_GATED = fakeCommit('gated main');
const C_CORRUPT = fakeCommit('corrupt main');

const full = (): Record<string, HubFile> => ({
  'config.json': { data: config },
  'generation_config.json': { data: generationConfig },
  'tokenizer.json': { data: tokenizerJson },
  'tokenizer_config.json': { data: tokenizerConfig },
  'model.safetensors': { data: weights, lfs: true },
});

let hub: FakeHub;
let home: string;
const ENV_KEYS = [
  'HF_HOME',
  'HF_HUB_CACHE',
  'HUGGINGFACE_HUB_CACHE',
  'HF_ENDPOINT',
  'HF_TOKEN',
  'HUGGING_FACE_HUB_TOKEN',
  'HF_TOKEN_PATH',
  'HF_HUB_OFFLINE',
  'XDG_CACHE_HOME',
  'HF_HUB_DISABLE_PROGRESS_BARS',
];
const savedEnv: Record<string, string | undefined> = {};

before(async () => {
  for (const k of ENV_KEYS) savedEnv[k] = process.env[k];
  hub = await new FakeHub().start();
  hub.addRepo('test-org/tiny-gpt2', {
    refs: { main: C_MAIN, v1: C_V1 },
    commits: { [C_MAIN]: full(), [C_V1]: { 'config.json': { data: config }, 'model.safetensors': { data: weights, lfs: true } } },
  });
  hub.addRepo('test-org/sharded', {
    refs: { main: C_SHARDED },
    commits: {
      [C_SHARDED]: {
        'config.json': { data: config },
        'model.safetensors.index.json': { data: index },
        [SHARD1]: { data: shard1, lfs: true },
        [SHARD2]: { data: shard2, lfs: true },
      },
    },
  });
  hub.addRepo('test-org/gated', { refs: { main: C_GATED }, gatedToken: 'hf_secret', commits: { [C_GATED]: full() } });
  const good = safetensors({ x: [1, 2, 3, 4] });
  const bad = new Uint8Array(good);
  bad[bad.length - 1] ^= 0xff;
  hub.addRepo('test-org/corrupt', {
    refs: { main: C_CORRUPT },
    commits: { [C_CORRUPT]: { 'config.json': { data: config }, 'model.safetensors': { data: good, lfs: true, served: bad } } },
  });
});

after(async () => {
  await hub.close();
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'glassbox-hub-'));
  for (const k of ENV_KEYS) delete process.env[k];
  process.env.HF_HOME = home;
  process.env.HF_ENDPOINT = hub.url;
  hub.cutOnce.clear();
  hub.noRange = false;
  hub.failNext = 0;
  hub.resolveHeaders = {};
});

afterEach(() => {
  rmSync(home, { recursive: true, force: true });
});

const repoDir = (id: string): string => join(home, 'hub', repoFolderName(id));
const since = (n: number) => hub.requests.slice(n);

test('resolveModelId splits org/name@revision', () => {
  assert.deepEqual(resolveModelId('org/name@v1.0'), { repoId: 'org/name', revision: 'v1.0' });
  assert.deepEqual(resolveModelId('org/name'), { repoId: 'org/name', revision: 'main' });
  assert.deepEqual(resolveModelId('gpt2'), { repoId: 'gpt2', revision: 'main' });
  assert.deepEqual(resolveModelId('org/name@refs/pr/1'), { repoId: 'org/name', revision: 'refs/pr/1' });
  assert.deepEqual(resolveModelId(`EleutherAI/pythia-70m@${C_MAIN}`), { repoId: 'EleutherAI/pythia-70m', revision: C_MAIN });
  for (const bad of ['a/b/c', 'org--x/y', 'org/na..me', '', 'org/name@', '-org/name', 'org/name@../x']) {
    assert.throws(() => resolveModelId(bad), /repo id|revision/, bad);
  }
  assert.equal(repoFolderName('EleutherAI/pythia-70m'), 'models--EleutherAI--pythia-70m');
});

test('cache directory: HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME, then ~/.cache', () => {
  for (const k of ENV_KEYS) delete process.env[k];
  assert.equal(hubCacheDir(), join(homedir(), '.cache', 'huggingface', 'hub'));
  process.env.XDG_CACHE_HOME = '/x';
  assert.equal(hubCacheDir(), '/x/huggingface/hub');
  process.env.HF_HOME = '/h';
  assert.equal(hubCacheDir(), '/h/hub');
  process.env.HF_HUB_CACHE = '/c';
  assert.equal(hubCacheDir(), '/c');
});

test('downloads into the Hugging Face cache layout (blobs, relative symlinks, refs, .no_exist)', async () => {
  const n = hub.requests.length;
  const snap = await downloadModel('test-org/tiny-gpt2');
  const dir = repoDir('test-org/tiny-gpt2');
  assert.equal(snap, join(dir, 'snapshots', C_MAIN));
  assert.equal(readFileSync(join(dir, 'refs', 'main'), 'utf8'), C_MAIN);

  const blobs: Record<string, Uint8Array> = {
    'config.json': config,
    'generation_config.json': generationConfig,
    'tokenizer.json': tokenizerJson,
    'tokenizer_config.json': tokenizerConfig,
  };
  for (const [file, data] of Object.entries(blobs)) {
    assert.ok(lstatSync(join(snap, file)).isSymbolicLink(), file);
    assert.equal(readlinkSync(join(snap, file)), `../../blobs/${gitBlobSha1(data)}`, file);
    assert.deepEqual(read(join(snap, file)), data, file);
  }
  assert.equal(readlinkSync(join(snap, 'model.safetensors')), `../../blobs/${sha256(weights)}`);
  assert.deepEqual(read(join(dir, 'blobs', sha256(weights))), weights);
  assert.deepEqual(readdirSync(join(dir, 'blobs')).sort(), [...Object.values(blobs).map(gitBlobSha1), sha256(weights)].sort());
  // special_tokens_map.json is not in the repo: remembered, as huggingface_hub does
  assert.ok(existsSync(join(dir, '.no_exist', C_MAIN, 'special_tokens_map.json')));
  assert.deepEqual(readdirSync(snap).sort(), [
    'config.json',
    'generation_config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
  ]);

  // The first request resolves the branch; every later one is pinned to the commit it gave.
  const reqs = since(n);
  assert.deepEqual(reqs[0], {
    method: 'HEAD',
    path: '/test-org/tiny-gpt2/resolve/main/config.json',
    range: undefined,
    authorization: undefined,
  });
  for (const r of reqs.slice(1))
    if (r.path.includes('/resolve/')) assert.ok(r.path.startsWith(`/test-org/tiny-gpt2/resolve/${C_MAIN}/`), r.path);
  assert.equal(reqs.filter((r) => r.path === `/blobs/${sha256(weights)}`).length, 1);

  // The snapshot is a model directory: the model and its tokenizer load from it.
  const model = loadFromDirectory(snap);
  assert.equal(model.cfg.nLayers, 2);
  const tok = loadTokenizer(snap);
  assert.deepEqual(tok.encode('Hello world'), [296, 279, 265]);
});

test('a second call is answered from the cache with no request; offline mode too', async () => {
  const snap = await downloadModel('test-org/tiny-gpt2');
  const n = hub.requests.length;
  assert.equal(await downloadModel('test-org/tiny-gpt2'), snap);
  assert.equal(await downloadModel('test-org/tiny-gpt2', { revision: C_MAIN }), snap);
  assert.equal(await downloadModel('test-org/tiny-gpt2', { files: ['config.json', 'model.safetensors'] }), snap);
  process.env.HF_HUB_OFFLINE = '1';
  assert.equal(await downloadModel('test-org/tiny-gpt2'), snap);
  assert.deepEqual(since(n), []);

  // offline, not cached: a clear error, still no request
  await assert.rejects(downloadModel('test-org/sharded'), (e: unknown) => {
    assert.ok(e instanceof HubError);
    assert.equal(e.kind, 'offline');
    assert.match(e.message, /test-org\/sharded@main: offline mode is on \(HF_HUB_OFFLINE\)/);
    assert.match(e.message, /never been downloaded/);
    return true;
  });
  await assert.rejects(
    downloadModel('test-org/tiny-gpt2', { files: ['config.json', 'vocab.txt'] }),
    /lacks it: missing from .*: vocab\.txt/,
  );
  await assert.rejects(downloadModel('test-org/tiny-gpt2', { revision: 'v1' }), /tiny-gpt2@v1: offline mode is on/);
  delete process.env.HF_HUB_OFFLINE;
  await assert.rejects(downloadModel('test-org/tiny-gpt2', { revision: 'v1', offline: true }), /offline mode is on/);
  assert.deepEqual(since(n), []);
});

test('a revision: its own snapshot and ref; missing optional files are remembered', async () => {
  const { repoId, revision } = resolveModelId('test-org/tiny-gpt2@v1');
  const snap = await downloadModel(repoId, { revision });
  const dir = repoDir(repoId);
  assert.equal(snap, join(dir, 'snapshots', C_V1));
  assert.equal(readFileSync(join(dir, 'refs', 'v1'), 'utf8'), C_V1);
  assert.deepEqual(readdirSync(snap).sort(), ['config.json', 'model.safetensors']);
  assert.deepEqual(readdirSync(join(dir, '.no_exist', C_V1)).sort(), [
    'generation_config.json',
    'special_tokens_map.json',
    'tokenizer.json',
    'tokenizer_config.json',
  ]);
  const n = hub.requests.length;
  assert.equal(await downloadModel(repoId, { revision }), snap);
  assert.deepEqual(since(n), []);
  // a commit sha writes no ref
  await downloadModel(repoId, { revision: C_MAIN, files: ['config.json'] });
  assert.deepEqual(readdirSync(join(dir, 'refs')), ['v1']);
});

test('404: the error names the repo, the revision and the file', async () => {
  await assert.rejects(downloadModel('test-org/tiny-gpt2', { files: ['config.json', 'pytorch_model.bin'] }), (e: unknown) => {
    assert.ok(e instanceof HubError);
    assert.equal(e.kind, 'entry-not-found');
    assert.equal(e.status, 404);
    assert.equal(e.message, 'test-org/tiny-gpt2@main: file "pytorch_model.bin" not found (HTTP 404)');
    return true;
  });
  await assert.rejects(downloadModel('test-org/tiny-gpt2', { revision: 'nope' }), (e: unknown) => {
    assert.ok(e instanceof HubError);
    assert.equal(e.kind, 'revision-not-found');
    assert.match(e.message, /test-org\/tiny-gpt2: revision "nope" not found/);
    return true;
  });
  await assert.rejects(downloadModel('test-org/missing'), (e: unknown) => {
    assert.ok(e instanceof HubError);
    assert.equal(e.kind, 'repo-not-found');
    assert.match(
      e.message,
      /test-org\/missing: repository not found at http:\/\/127\.0\.0\.1:\d+ .*If it is private or gated, set HF_TOKEN/,
    );
    return true;
  });
});

test('401 on a gated repo tells the user to set HF_TOKEN; HF_TOKEN is sent as a bearer token', async () => {
  await assert.rejects(downloadModel('test-org/gated'), (e: unknown) => {
    assert.ok(e instanceof HubError);
    assert.equal(e.kind, 'unauthorized');
    assert.equal(e.status, 401);
    assert.match(e.message, /^test-org\/gated@main: config\.json: HTTP 401: test-org\/gated is gated or private/);
    assert.match(e.message, /set HF_TOKEN/);
    return true;
  });
  await assert.rejects(
    downloadModel('test-org/gated', { token: 'hf_wrong' }),
    /gated or private.*the token in use \(HF_TOKEN\) does not give access/,
  );

  process.env.HF_TOKEN = 'hf_secret';
  const n = hub.requests.length;
  const snap = await downloadModel('test-org/gated');
  assert.deepEqual(read(join(snap, 'model.safetensors')), weights);
  const reqs = since(n);
  assert.ok(reqs.length >= 6);
  for (const r of reqs) assert.equal(r.authorization, 'Bearer hf_secret', r.path);

  // the token file written by `huggingface-cli login` is read when HF_TOKEN is unset
  delete process.env.HF_TOKEN;
  writeFileSync(join(home, 'token'), 'hf_secret\n');
  const m = hub.requests.length;
  await downloadModel('test-org/gated', { refresh: true });
  assert.equal(since(m)[0]!.authorization, 'Bearer hf_secret');
});

test('a download cut midway resumes with a Range request', async () => {
  hub.cutOnce.add(sha256(weights));
  const progress: DownloadProgress[] = [];
  const n = hub.requests.length;
  const snap = await downloadModel('test-org/tiny-gpt2', { onProgress: (p) => progress.push(p) });
  assert.deepEqual(read(join(snap, 'model.safetensors')), weights);
  const gets = since(n).filter((r) => r.path === `/blobs/${sha256(weights)}`);
  assert.equal(gets.length, 2);
  assert.equal(gets[0]!.range, undefined);
  assert.equal(gets[1]!.range, `bytes=${Math.floor(weights.byteLength / 2)}-`);
  const w = progress.filter((p) => p.file === 'model.safetensors');
  assert.deepEqual(w.at(-1), { file: 'model.safetensors', downloaded: weights.byteLength, total: weights.byteLength });
  for (let i = 1; i < w.length; i++)
    if (w[i]!.downloaded < w[i - 1]!.downloaded) assert.equal(w[i]!.downloaded, Math.floor(weights.byteLength / 2));
  assert.deepEqual(
    readdirSync(join(repoDir('test-org/tiny-gpt2'), 'blobs')).filter((f) => f.endsWith('.incomplete')),
    [],
  );
});

test('a partial file left by an earlier run is resumed; a server without Range support restarts it', async () => {
  const blobs = join(repoDir('test-org/tiny-gpt2'), 'blobs');
  mkdirSync(blobs, { recursive: true });
  const part = join(blobs, `${sha256(weights)}.incomplete`);
  writeFileSync(part, weights.subarray(0, 1000));
  let n = hub.requests.length;
  const snap = await downloadModel('test-org/tiny-gpt2');
  assert.deepEqual(read(join(snap, 'model.safetensors')), weights);
  assert.deepEqual(
    since(n)
      .filter((r) => r.path.startsWith('/blobs/'))
      .map((r) => r.range),
    ['bytes=1000-'],
  );
  assert.ok(!existsSync(part));

  // Range ignored (200): the partial file (garbage here) is overwritten, not appended to.
  rmSync(join(home, 'hub'), { recursive: true });
  mkdirSync(blobs, { recursive: true });
  writeFileSync(part, new Uint8Array(1000).fill(7));
  hub.noRange = true;
  n = hub.requests.length;
  const again = await downloadModel('test-org/tiny-gpt2');
  assert.deepEqual(read(join(again, 'model.safetensors')), weights);
  assert.deepEqual(
    since(n)
      .filter((r) => r.path.startsWith('/blobs/'))
      .map((r) => r.range),
    ['bytes=1000-'],
  );
});

test('a sha256 mismatch deletes the download and names the file', async () => {
  await assert.rejects(downloadModel('test-org/corrupt'), (e: unknown) => {
    assert.ok(e instanceof HubError);
    assert.equal(e.kind, 'integrity');
    assert.match(
      e.message,
      new RegExp(
        `^test-org/corrupt@${C_CORRUPT}: model\\.safetensors: sha256 mismatch \\(expected ${sha256(safetensors({ x: [1, 2, 3, 4] }))}, got [0-9a-f]{64}\\)`,
      ),
    );
    return true;
  });
  const dir = repoDir('test-org/corrupt');
  assert.deepEqual(readdirSync(join(dir, 'blobs')), [gitBlobSha1(config)]);
  assert.ok(!existsSync(join(dir, 'snapshots', C_CORRUPT, 'model.safetensors')));
  assert.ok(!existsSync(join(dir, 'refs', 'main')));
});

test('sharded weights: the index and every shard it names', async () => {
  const snap = await downloadModel('test-org/sharded');
  const dir = repoDir('test-org/sharded');
  assert.deepEqual(readdirSync(snap).sort(), ['config.json', SHARD1, SHARD2, 'model.safetensors.index.json']);
  assert.equal(readlinkSync(join(snap, SHARD2)), `../../blobs/${sha256(shard2)}`);
  assert.ok(existsSync(join(dir, '.no_exist', C_SHARDED, 'model.safetensors')));
  const ckpt = openCheckpoint(snap);
  try {
    assert.ok(ckpt.sharded);
    assert.deepEqual(ckpt.keys().sort(), ['a.weight', 'b.weight', 'c.weight']);
    assert.deepEqual(ckpt.read('c.weight').toArray(), [6, 7, 8, 9]);
    assert.deepEqual(ckpt.read('a.weight').toArray(), [1, 2, 3]);
  } finally {
    ckpt.close();
  }
  const n = hub.requests.length;
  assert.equal(await downloadModel('test-org/sharded'), snap);
  assert.equal(await downloadModel('test-org/sharded', { offline: true }), snap);
  assert.deepEqual(since(n), []);
});

test('HF_HUB_CACHE, the cacheDir option, copies instead of symlinks', async () => {
  const cache = join(home, 'elsewhere');
  process.env.HF_HUB_CACHE = cache;
  const snap = await downloadModel('test-org/tiny-gpt2', { files: ['config.json'] });
  assert.equal(snap, join(cache, 'models--test-org--tiny-gpt2', 'snapshots', C_MAIN));

  const other = join(home, 'copies');
  const copied = await downloadModel('test-org/tiny-gpt2', {
    cacheDir: other,
    symlinks: false,
    files: ['config.json', 'model.safetensors'],
  });
  assert.equal(copied, join(other, 'models--test-org--tiny-gpt2', 'snapshots', C_MAIN));
  assert.ok(lstatSync(join(copied, 'model.safetensors')).isFile());
  assert.deepEqual(read(join(copied, 'model.safetensors')), weights);
  assert.deepEqual(read(join(other, 'models--test-org--tiny-gpt2', 'blobs', sha256(weights))), weights);
});

test('a moved branch is picked up with refresh; unchanged blobs are not fetched again', async () => {
  hub.addRepo('test-org/moving', { refs: { main: C_V1 }, commits: { [C_V1]: full(), [C_MAIN]: full() } });
  const old = await downloadModel('test-org/moving');
  assert.equal(old, join(repoDir('test-org/moving'), 'snapshots', C_V1));
  hub.repos.get('test-org/moving')!.refs.main = C_MAIN;
  let n = hub.requests.length;
  assert.equal(await downloadModel('test-org/moving'), old);
  assert.deepEqual(since(n), []);
  n = hub.requests.length;
  const fresh = await downloadModel('test-org/moving', { refresh: true });
  assert.equal(fresh, join(repoDir('test-org/moving'), 'snapshots', C_MAIN));
  assert.equal(readFileSync(join(repoDir('test-org/moving'), 'refs', 'main'), 'utf8'), C_MAIN);
  assert.ok(since(n).every((r) => r.method === 'HEAD'));
  assert.deepEqual(read(join(fresh, 'model.safetensors')), weights);
});

test('503s are retried; an unreachable Hub is an error, or the cached snapshot when refreshing', async () => {
  hub.failNext = 2;
  const n = hub.requests.length;
  const snap = await downloadModel('test-org/tiny-gpt2', { files: ['config.json'] });
  assert.deepEqual(
    since(n).map((r) => `${r.method} ${r.path}`),
    [
      'HEAD /test-org/tiny-gpt2/resolve/main/config.json',
      'HEAD /test-org/tiny-gpt2/resolve/main/config.json',
      'HEAD /test-org/tiny-gpt2/resolve/main/config.json',
      `GET /test-org/tiny-gpt2/resolve/${C_MAIN}/config.json`,
    ],
  );

  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await assert.rejects(downloadModel('test-org/sharded', { endpoint: deadUrl, retries: 0 }), (e: unknown) => {
    assert.ok(e instanceof HubError);
    assert.equal(e.kind, 'http');
    assert.ok(e.message.startsWith(`${deadUrl}/test-org/sharded/resolve/main/config.json: request failed`), e.message);
    assert.match(e.message, /set HF_HUB_OFFLINE=1/);
    return true;
  });
  assert.equal(await downloadModel('test-org/tiny-gpt2', { files: ['config.json'], endpoint: deadUrl, retries: 1, refresh: true }), snap);
});

test('bad inputs fail before any request', async () => {
  const n = hub.requests.length;
  await assert.rejects(downloadModel('not a repo'), /not a Hugging Face repo id/);
  await assert.rejects(downloadModel('test-org/tiny-gpt2', { files: ['../../etc/passwd'] }), /not a plain relative file name/);
  await assert.rejects(downloadModel('test-org/tiny-gpt2', { revision: '../x' }), /bad revision/);
  assert.deepEqual(since(n), []);
});

// Hostile or broken server responses (a commit or ETag that climbs out of the cache, sizes and bytes
// that lie) are cases of the fault suite: test/faults/hub.ts.
