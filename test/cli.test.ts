/** The `glassbox` command, driven as a user would (a child process), checked against the fixtures. */
import { describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { FakeHub, fakeCommit } from './hub-server.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES, maxDiff, readAll, readJson } from './fixture-utils.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function glassbox(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('glassbox CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-cli-'));

  it('inspect prints the family, dimensions, parameter count and hook names', () => {
    const r = glassbox('inspect', `${FIXTURES}llama`);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /family\s+llama/);
    assert.match(r.out, /heads\s+4 \(key\/value heads 2\), d_head 16/);
    assert.match(r.out, /blocks\.1\.attn\.hook_rot_k/);
  });

  it('inspect counts a tied unembedding once: the parameters are the checkpoint tensors', () => {
    const r = glassbox('inspect', `${FIXTURES}gpt2`);
    assert.equal(r.code, 0, r.err);
    let n = 0;
    for (const t of readAll(`${FIXTURES}gpt2/model.safetensors`).values()) n += t.size;
    assert.match(r.out, new RegExp(`parameters\\s+${n.toLocaleString('en-US')}\\n`));
  });

  it('run prints the top-10 next tokens with probabilities that match the logits', () => {
    const r = glassbox('run', `${FIXTURES}gpt2`, '--tokens', '313,312,316');
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, 10);
    const probs = lines.map((l) => Number(l.trim().split(/\s+/)[1]));
    assert.ok(
      probs.every((p, i) => i === 0 || p <= probs[i - 1]!),
      'sorted',
    );
  });

  for (const processed of [false, true]) {
    it(`cache${processed ? ' --process' : ''} writes logits and hooks equal to TransformerLens's`, () => {
      const info = readJson(`${FIXTURES}gpt_neox/ref.json`) as {
        cases: Record<string, { tokens: number[][]; attention_mask: number[][] | null }>;
      };
      const file = join(dir, 'tokens.json');
      writeFileSync(file, JSON.stringify({ tokens: info.cases.batch!.tokens, attention_mask: info.cases.batch!.attention_mask }));
      const out = join(dir, `cache-${processed}.safetensors`);
      const r = glassbox(
        'cache',
        `${FIXTURES}gpt_neox`,
        '--tokens-json',
        file,
        '--out',
        out,
        '--names',
        'hook_resid_post$|ln_final',
        ...(processed ? ['--process'] : []),
      );
      assert.equal(r.code, 0, r.err);
      const got = readAll(out);
      const ref = readAll(`${FIXTURES}gpt_neox/ref_${processed ? 'fold' : 'nofold'}.safetensors`);
      const mask = info.cases.batch!.attention_mask!;
      assert.ok(maxDiff(got.get('logits')!, ref.get('batch/logits')!, mask) < 1e-4);
      for (const name of ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post', 'ln_final.hook_scale', 'ln_final.hook_normalized'])
        assert.ok(maxDiff(got.get(name)!, ref.get(`batch/${name}`)!, mask) < 1e-4, name);
      assert.ok(!got.has('blocks.0.hook_attn_out'));
    });
  }

  it('errors are one line with a non-zero exit code', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"tokens": [[1, 2], [3]]}');
    const huge = join(dir, 'huge.json');
    writeFileSync(huge, '{"tokens": [[1e300, 2, 3]]}');
    const nul = join(dir, 'null.json');
    writeFileSync(nul, 'null');
    writeFileSync(join(dir, 'ok.json'), '{"tokens": [[1, 2, 3]]}');
    const cases: [string[], RegExp][] = [
      [['inspect', join(dir, 'missing')], /missing: no such directory/],
      [
        ['cache', `${FIXTURES}gpt2`, '--tokens-json', bad, '--out', join(dir, 'x.safetensors')],
        /bad\.json: "tokens"\[1\] has 1 entries, row 0 has 2/,
      ],
      [['run', `${FIXTURES}gpt2`, '--tokens', '1,100000'], /token id 100000 at position 1 is outside the vocabulary \(0\.\.319\)/],
      // Ids that int64 cannot hold, and empty entries, were once run as token 0.
      [['run', `${FIXTURES}gpt2`, '--tokens', '1e300,2,3'], /--tokens: entry 1 \('1e300'\) is not a token id/],
      [['run', `${FIXTURES}gpt2`, '--tokens', '18446744073709551616'], /--tokens: token id 18446744073709551616 is too large/],
      [['run', `${FIXTURES}gpt2`, '--tokens', ' 1, 2,,3'], /--tokens: entry 3 is empty/],
      [
        ['cache', `${FIXTURES}gpt2`, '--tokens-json', huge, '--out', join(dir, 'x.safetensors')],
        /huge\.json: "tokens"\[0\]\[0\] is 1e\+300, not a token id/,
      ],
      [['cache', `${FIXTURES}gpt2`, '--tokens-json', nul, '--out', join(dir, 'x.safetensors')], /null\.json: expected a JSON object/],
      [
        [
          'cache',
          `${FIXTURES}gpt2`,
          '--tokens-json',
          huge.replace('huge', 'ok'),
          '--out',
          join(dir, 'x.safetensors'),
          '--names',
          'no_such_hook',
        ],
        /--names: \/no_such_hook\/ matches no hook point \(did you mean/,
      ],
      [
        ['cache', `${FIXTURES}gpt2`, '--tokens-json', bad.replace('bad', 'nothere'), '--out', join(dir, 'x.safetensors')],
        /nothere\.json: does not exist/,
      ],
      [
        ['run', `${FIXTURES}gpt2`, '--tokens', Array.from({ length: 70 }, () => '1').join(',')],
        /70 positions exceeds the model's context of 64/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = glassbox(...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, pattern);
      assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
    }
    assert.ok(!existsSync(join(dir, 'x.safetensors')));
  });

  it('loads a hub id through the Hugging Face cache and tokenizes text prompts', async () => {
    const commit = fakeCommit('cli gpt2');
    const file = (p: string) => new Uint8Array(readFileSync(p));
    const tok = fileURLToPath(new URL('./fixtures/tiny-bpe/', import.meta.url));
    // Files are read before the server starts, so a failed read cannot leave it running.
    const hub = new FakeHub();
    hub.addRepo('test-org/tiny-gpt2', {
      refs: { main: commit },
      commits: {
        [commit]: {
          'config.json': { data: file(`${FIXTURES}gpt2/config.json`) },
          'model.safetensors': { data: file(`${FIXTURES}gpt2/model.safetensors`), lfs: true },
          'tokenizer.json': { data: file(`${tok}tokenizer.json`) },
          'tokenizer_config.json': { data: file(`${tok}tokenizer_config.json`) },
        },
      },
    });
    await hub.start();
    try {
      const env = { ...process.env, HF_ENDPOINT: hub.url, HF_HOME: join(dir, 'hf'), HF_HUB_DISABLE_PROGRESS_BARS: '1' };
      const run = (...args: string[]) =>
        promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env });
      const r = await run('run', 'test-org/tiny-gpt2', 'hello world', '--top', '3');
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 3);
      assert.match(lines[0]!, /^1 {2}0\.\d{4}\s+\d+ {2}".*"$/);
      assert.ok(existsSync(join(dir, 'hf', 'hub', 'models--test-org--tiny-gpt2', 'refs', 'main')));
      const before = hub.requests.length;
      await run('inspect', 'test-org/tiny-gpt2');
      assert.equal(hub.requests.length, before, 'the second load is served from the cache');
    } finally {
      await hub.close();
    }
  });

  it('cleans up', () => rmSync(dir, { recursive: true, force: true }));
});
