/**
 * Bad tokens: command-line id lists, token files, token arrays and tensors handed to a model,
 * attention masks, and runs longer than the model's context.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTokenIds, readTokensJson } from '../../src/cli/tokens.js';
import { repeatedRandomTokens } from '../../src/analysis/heads.js';
import type { HookedTransformer } from '../../src/model/hooked.js';
import { tensor } from '../../src/tensor/index.js';
import { DEFAULT_DIR, HF, PROMPT, freshDir, load, referenceLogits } from './build.js';
import { re, type Case } from './harness.js';

const models = new Map<string, HookedTransformer>();
/** One model per directory for the whole suite (their runs do not change them). */
function model(dir: string): HookedTransformer {
  let m = models.get(dir);
  if (!m) {
    m = load(dir);
    models.set(dir, m);
  }
  return m;
}
const gpt2 = () => model(`${HF}gpt2`);
const def = () => model(DEFAULT_DIR.replace(/\/$/, ''));

function idLists(): Case[] {
  const bad: [string, RegExp][] = [
    ['', /entry 1 is empty/],
    [' ', /entry 1 is empty/],
    [' 1, 2,,3', /entry 3 is empty/],
    [',1', /entry 1 is empty/],
    ['1,', /entry 2 is empty/],
    ['1e300,2,3', /entry 1 \('1e300'\) is not a token id/],
    ['18446744073709551616', /token id 18446744073709551616 is too large/],
    ['9007199254740993', /too large/],
    ['-1', /'-1'\) is not a token id/],
    ['1.5', /'1\.5'\) is not a token id/],
    ['abc', /'abc'\) is not a token id/],
    ['0x10', /'0x10'\) is not a token id/],
    ['１２', /is not a token id/],
    ['1;2', /is not a token id/],
  ];
  return [
    ...bad.map(([text, problem]): Case => ({
      name: `--tokens ${JSON.stringify(text)}`,
      run: () => parseTokenIds(text, '--tokens'),
      error: [/^--tokens: /, problem],
    })),
    {
      name: '--tokens " 7, 007 ,12" (spaces and leading zeros)',
      run: () => parseTokenIds(' 7, 007 ,12', '--tokens'),
      check: (r) => {
        if (JSON.stringify(r) !== '[7,7,12]') throw new Error(`parsed ${JSON.stringify(r)}`);
      },
    },
  ];
}

function tokenFiles(): Case[] {
  const file = (label: string, content: string | null, problem: RegExp, make?: (p: string) => void): Case => {
    let path = '';
    return {
      name: `tokens file: ${label}`,
      run: () => {
        path = join(freshDir('tokens'), 'tokens.json');
        if (make) make(path);
        else if (content !== null) writeFileSync(path, content);
        return readTokensJson(path);
      },
      error: () => [new RegExp(`^${re(path)}: `), problem],
    };
  };
  return [
    file('null', 'null', /expected a JSON object.*got null/),
    file('a list', '[[1, 2]]', /expected a JSON object/),
    file('a number', '42', /expected a JSON object/),
    file('"tokens": null', '{"tokens": null}', /"tokens" must be a non-empty list/),
    file('"tokens": []', '{"tokens": []}', /"tokens" must be a non-empty list/),
    file('"tokens": [[]]', '{"tokens": [[]]}', /"tokens"\[0\] must be a non-empty list/),
    file('"tokens": [1, 2]', '{"tokens": [1, 2]}', /"tokens"\[0\] must be a non-empty list, got 1/),
    file('1e300 (was run as token 0)', '{"tokens": [[1e300, 2, 3]]}', /"tokens"\[0\]\[0\] is 1e\+300, not a token id/),
    file('2^64', '{"tokens": [[18446744073709551616]]}', /"tokens"\[0\]\[0\] is 18446744073709552000, not a token id/),
    file('-1', '{"tokens": [[5, -1]]}', /"tokens"\[0\]\[1\] is -1/),
    file('1.5', '{"tokens": [[1.5]]}', /is 1\.5, not a token id/),
    file('"1"', '{"tokens": [["1"]]}', /is "1", not a token id/),
    file('true', '{"tokens": [[true]]}', /is true, not a token id/),
    file('rows of different lengths', '{"tokens": [[1, 2], [3]]}', /"tokens"\[1\] has 1 entries, row 0 has 2/),
    file('a mask value 2', '{"tokens": [[1, 2]], "attention_mask": [[1, 2]]}', /"attention_mask"\[0\]\[1\] is 2, not 0 or 1/),
    file(
      'a mask of another shape',
      '{"tokens": [[1, 2]], "attention_mask": [[1, 1, 1]]}',
      /"attention_mask" is 1 x 3, but "tokens" is 1 x 2/,
    ),
    file('a mask with too many rows', '{"tokens": [[1, 2]], "attention_mask": [[1, 1], [1, 1]]}', /"attention_mask" is 2 x 2/),
    file('a mask that is a string', '{"tokens": [[1, 2]], "attention_mask": "all"}', /"attention_mask" must be a non-empty list/),
    file('missing', null, /does not exist/),
    file('a directory', null, /is a directory/, (p) => mkdirSync(p)),
    file('a symlink loop', null, /symbolic link loop/, (p) => symlinkSync(p, p)),
    file('not JSON', '{"tokens": [[1, 2]', /not valid JSON/),
    file('empty', '', /not valid JSON/),
    {
      name: 'tokens file: a valid file with a mask',
      run: () => {
        const p = join(freshDir('tokens'), 'ok.json');
        writeFileSync(p, '{"tokens": [[0, 1, 2], [3, 4, 5]], "attention_mask": [[0, 1, 1], [1, 1, 1]]}');
        return readTokensJson(p);
      },
      check: (r) => {
        const v = r as { tokens: number[][]; mask: number[][] };
        if (JSON.stringify(v) !== '{"tokens":[[0,1,2],[3,4,5]],"mask":[[0,1,1],[1,1,1]]}') throw new Error(JSON.stringify(v));
      },
    },
  ];
}

function modelInputs(): Case[] {
  const forward = (label: string, input: () => Parameters<HookedTransformer['forward']>[0], problem: RegExp, opts = {}): Case => ({
    name: `gpt2 forward: ${label}`,
    run: () => gpt2().forward(input(), opts),
    error: problem,
  });
  return [
    forward('token id = vocab (512)', () => [[1, 512]], /token id 512 at position 1 is outside the vocabulary \(0\.\.511\)/),
    forward('token id -1', () => [[-1, 2]], /token id -1 at position 0 is outside the vocabulary/),
    forward('token id 1e300 (was run as token 0)', () => [[1e300, 2]], /the id at row 0, position 0 is 1e\+300, not a token id/),
    forward('token id 2^64', () => [[2 ** 64]], /position 0 is 18446744073709552000, not a token id/),
    forward('token id NaN', () => [[NaN]], /position 0 is NaN, not a token id/),
    forward('token id 1.5', () => [[1.5, 2]], /position 0 is 1\.5, not a token id/),
    forward('a float tensor 1.7 (was truncated to 1)', () => tensor([[1.7, 2]]), /position 0 is 1\.7\d*, not a token id/),
    forward('rows of different lengths', () => [[1, 2], [3]], /rows have different lengths/),
    forward('a rank-1 tensor', () => tensor([1, 2], undefined, 'int64'), /must be \[batch, pos\]/),
    forward('a mask of another shape', () => [[1, 2, 3]], /attentionMask has shape \[1,2\], tokens have \[1,3\]/, {
      attentionMask: [[1, 1]],
    }),
    forward('a mask value 2', () => [[1, 2]], /attentionMask: the value at row 0, position 1 is 2, not 0 or 1/, {
      attentionMask: [[1, 2]],
    }),
    {
      name: 'gpt2 forward: the fixture prompt as an int32 tensor',
      run: () =>
        gpt2()
          .forward(tensor(PROMPT, undefined, 'int32'))
          .dataSync(),
      check: (r) => {
        const want = referenceLogits(`${HF}gpt2`);
        if ((r as Float32Array).some((v, i) => v !== want[i])) throw new Error('int32 tokens gave other logits');
      },
    },
  ];
}

function contexts(): Case[] {
  const ids = (n: number) => [Array.from({ length: n }, (_, i) => (i * 37) % 4000)];
  const shape = (want: number[]) => (r: unknown) => {
    const got = (r as { shape: number[] }).shape;
    if (got.join() !== want.join()) throw new Error(`shape [${got}]`);
  };
  return [
    {
      name: 'default (rotary, context 256): 300 tokens (ran silently)',
      run: () => def().forward(ids(300)),
      error: [/input of 300 positions exceeds the model's context of 256/, /allowLongContext/],
    },
    { name: 'default: 256 tokens run', run: () => def().forward(ids(256)), check: shape([1, 256, 4096]) },
    {
      name: 'default: 300 tokens with allowLongContext run',
      run: () => def().forward(ids(300), { allowLongContext: true }),
      check: shape([1, 300, 4096]),
    },
    {
      name: 'default: 300 positions of which 200 real (left padding) run',
      run: () => def().forward(ids(300), { attentionMask: [Array.from({ length: 300 }, (_, i) => (i < 100 ? 0 : 1))] }),
      check: shape([1, 300, 4096]),
    },
    {
      name: 'default: generation past the context',
      run: () => def().generate(ids(250)[0]!, { maxNewTokens: 10 }),
      error: /generate: 250 prompt \+ 10 new tokens \(260 positions\) exceeds the model's context of 256/,
    },
    {
      name: 'gpt2 (learned positions): 65 tokens, even with allowLongContext',
      run: () => gpt2().forward([Array.from({ length: 65 }, () => 1)], { allowLongContext: true }),
      error: /65 positions exceeds the model's context of 64 \(it has learned position embeddings for 64 positions\)/,
    },
    {
      name: 'heads: repeated tokens of 1000 on the default model (all-zero scores after 69 s)',
      run: () => repeatedRandomTokens(def(), { seqLen: 1000 }),
      error:
        /seqLen 1000 does not fit the context of 256 twice \(at most 127 with BOS; allowLongContext or --allow-long-context lifts the limit\)/,
    },
    { name: 'heads: seqLen 0', run: () => repeatedRandomTokens(def(), { seqLen: 0 }), error: /seqLen 0 does not fit/ },
    { name: 'heads: seqLen 1.5', run: () => repeatedRandomTokens(def(), { seqLen: 1.5 }), error: /seqLen 1\.5 does not fit/ },
    {
      name: 'generate: maxNewTokens -1',
      run: () => gpt2().generate([1, 2], { maxNewTokens: -1 }),
      error: /maxNewTokens must be a non-negative integer, got -1/,
    },
    {
      name: 'generate: maxNewTokens 2.5',
      run: () => gpt2().generate([1, 2], { maxNewTokens: 2.5 }),
      error: /maxNewTokens must be a non-negative integer, got 2\.5/,
    },
  ];
}

export function tokenCases(): Case[] {
  return [...idLists(), ...tokenFiles(), ...modelInputs(), ...contexts()];
}
