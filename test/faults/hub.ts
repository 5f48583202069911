/**
 * Hostile or broken Hub responses (the fake Hub of test/hub-server.ts, reached through
 * HF_ENDPOINT): commits and ETags that would climb out of the cache, sizes and bytes that lie,
 * redirects elsewhere, error codes. Each download must fail with a HubError that says what the
 * server did, and write nothing outside HF_HOME; the honest server's download must load.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadModel, HubError, type HubErrorKind } from '../../src/io/hub/index.js';
import { loadModel } from '../../src/model/pretrained.js';
import { FakeHub, fakeCommit } from '../hub-server.js';
import { HF, sameLogits } from './build.js';
import type { Case } from './harness.js';

const GPT2 = `${HF}gpt2`;
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(join(GPT2, file)));
const C_MAIN = fakeCommit('faults tiny-gpt2 main');
const ENV = [
  'HF_HOME',
  'HF_HUB_CACHE',
  'HUGGINGFACE_HUB_CACHE',
  'HF_ENDPOINT',
  'HF_TOKEN',
  'HF_HUB_OFFLINE',
  'HF_HUB_DISABLE_PROGRESS_BARS',
];

let hub: FakeHub | null = null;
const saved: Record<string, string | undefined> = {};

export async function startHub(): Promise<void> {
  for (const k of ENV) saved[k] = process.env[k];
  hub = await new FakeHub().start();
  hub.addRepo('faults/tiny-gpt2', {
    refs: { main: C_MAIN },
    commits: {
      [C_MAIN]: {
        'config.json': { data: read('config.json') },
        'model.safetensors': { data: read('model.safetensors'), lfs: true },
      },
    },
  });
  // Bytes of their own: the fake Hub keys blobs by sha256, so sharing them would corrupt tiny-gpt2's.
  const good = read('ref.safetensors');
  const bad = new Uint8Array(good);
  bad[bad.length - 1]! ^= 0xff;
  hub.addRepo('faults/corrupt', {
    refs: { main: fakeCommit('faults corrupt') },
    commits: {
      [fakeCommit('faults corrupt')]: {
        'config.json': { data: read('config.json') },
        'model.safetensors': { data: good, lfs: true, served: bad },
      },
    },
  });
}

export async function stopHub(): Promise<void> {
  await hub?.close();
  for (const k of ENV) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
}

/** Every path under `root`. */
const tree = (root: string): string[] => readdirSync(root, { recursive: true, withFileTypes: true }).map((e) => join(e.parentPath, e.name));

/**
 * A download from a server answering with `headers` on every resolve request (and `setup` done):
 * it must fail with a HubError of `kind` whose message matches `message`, and nothing may appear
 * outside the cache, which sits two levels below a scratch directory so a climbing path lands in it.
 */
function hostile(
  label: string,
  headers: Record<string, string>,
  kind: HubErrorKind,
  message: RegExp,
  options: { repo?: string; setup?: (h: FakeHub) => void } = {},
): Case {
  return {
    name: label,
    run: async () => {
      const outside = mkdtempSync(join(tmpdir(), 'glassbox-faults-hub-'));
      try {
        for (const k of ENV) delete process.env[k];
        process.env.HF_HOME = join(outside, 'a', 'hf');
        process.env.HF_ENDPOINT = hub!.url;
        hub!.resolveHeaders = headers;
        hub!.failNext = 0;
        options.setup?.(hub!);
        let error: unknown = null;
        try {
          await downloadModel(options.repo ?? 'faults/tiny-gpt2', { retries: 0, progressBar: false });
        } catch (e) {
          error = e;
        }
        const escaped = tree(outside).filter((p) => !p.startsWith(join(outside, 'a', 'hf')) && p !== join(outside, 'a'));
        if (escaped.length) throw new Error(`wrote outside the cache: ${escaped.join(', ')}`);
        if (error === null) return 'downloaded';
        if (!(error instanceof HubError) || error.kind !== kind)
          throw new Error(
            `expected a HubError of kind ${kind}, got ${String(error)} (${error instanceof HubError ? error.kind : 'no kind'})`,
          );
        throw error;
      } finally {
        hub!.resolveHeaders = {};
        rmSync(outside, { recursive: true, force: true });
      }
    },
    error: [message, /^(?!expected a HubError)/],
  };
}

export function hubCases(): Case[] {
  return [
    // Paths from the server (these were the cache escape).
    hostile(
      'X-Repo-Commit ../../../../../escape',
      { 'X-Repo-Commit': '../../../../../escape' },
      'protocol',
      /X-Repo-Commit "\.\.\/\.\.\/.*not a 40-digit commit sha/,
    ),
    hostile('X-Repo-Commit an absolute path', { 'X-Repo-Commit': '/tmp/escape' }, 'protocol', /not a 40-digit commit sha/),
    hostile('X-Repo-Commit a branch name', { 'X-Repo-Commit': 'main' }, 'protocol', /X-Repo-Commit "main", not a 40-digit commit sha/),
    hostile('X-Repo-Commit in upper case', { 'X-Repo-Commit': C_MAIN.toUpperCase() }, 'protocol', /not a 40-digit commit sha/),
    hostile('X-Repo-Commit of 41 digits', { 'X-Repo-Commit': `${C_MAIN}0` }, 'protocol', /not a 40-digit commit sha/),
    hostile('X-Repo-Commit empty', { 'X-Repo-Commit': '' }, 'protocol', /not a 40-digit commit sha|did not send X-Repo-Commit/),
    hostile('ETag ..', { ETag: '".."', 'X-Linked-Etag': '".."' }, 'protocol', /unusable ETag/),
    hostile('ETag with a slash', { ETag: '"../../escape"', 'X-Linked-Etag': '"../../escape"' }, 'protocol', /unusable ETag/),
    hostile(
      'ETag of 300 characters',
      { ETag: `"${'a'.repeat(300)}"`, 'X-Linked-Etag': `"${'a'.repeat(300)}"` },
      'protocol',
      /unusable ETag/,
    ),
    hostile('ETag empty', { ETag: '""', 'X-Linked-Etag': '""' }, 'protocol', /did not send an ETag/),
    // Sizes and bytes that lie.
    hostile(
      'X-Linked-Size smaller than the file',
      { 'X-Linked-Size': '100' },
      'integrity',
      /config\.json: downloaded \d+ bytes, expected 100;/,
    ),
    hostile('X-Linked-Size larger than the file', { 'X-Linked-Size': String(10 ** 9) }, 'integrity', /expected 1000000000/),
    hostile('an LFS blob whose bytes do not match its sha256', {}, 'integrity', /sha256 mismatch/, { repo: 'faults/corrupt' }),
    hostile(
      'an X-Linked-Etag naming other bytes',
      { 'X-Linked-Etag': `"${'0'.repeat(64)}"` },
      'integrity',
      /sha256 mismatch \(expected 0{64}/,
    ),
    // Redirects elsewhere, error codes.
    hostile('an LFS redirect to file:///etc/passwd', { Location: 'file:///etc/passwd' }, 'http', /file:\/\/\/etc\/passwd: request failed/),
    hostile('an LFS redirect to a closed port', { Location: 'http://127.0.0.1:9/blob' }, 'http', /request failed/),
    hostile('503 on every request', {}, 'http', /HTTP 503/, { setup: (h) => (h.failNext = 1000) }),
    hostile('a repo that does not exist', {}, 'repo-not-found', /faults\/nothing/, { repo: 'faults/nothing' }),
    {
      name: 'a revision that would climb out of refs/',
      run: () => downloadModel('faults/tiny-gpt2', { revision: '../../escape' }),
      error: /bad revision/,
    },
    {
      name: 'the honest server: downloaded and loaded, the fixture model',
      run: async () => {
        const home = mkdtempSync(join(tmpdir(), 'glassbox-faults-hub-'));
        try {
          for (const k of ENV) delete process.env[k];
          process.env.HF_HOME = home;
          process.env.HF_ENDPOINT = hub!.url;
          hub!.failNext = 0;
          return await loadModel('faults/tiny-gpt2');
        } finally {
          rmSync(home, { recursive: true, force: true });
        }
      },
      check: (m) => {
        sameLogits(GPT2)(m);
        if ((m as { name: string }).name !== 'faults/tiny-gpt2') throw new Error(`model.name ${(m as { name: string }).name}`);
      },
    },
  ];
}
