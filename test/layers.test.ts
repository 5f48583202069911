/**
 * The layer order of src/ (eslint.config.js, docs/architecture.md): an upward import is a lint
 * error. Lints small texts as if they were files of each layer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';

const eslint = new ESLint();

async function layerErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: file });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('the layer order of src/ is enforced by lint', () => {
  const upward: [string, string, string][] = [
    ['src/model/x.ts', "import { attributionPatching } from '../analysis/attribution.js';", 'src/model sits below src/analysis'],
    ['src/tensor/ops/x.ts', "import { openCheckpoint } from '../../io/index.js';", 'src/tensor sits below src/io'],
    ['src/train/x.ts', "import { inductionScores } from '../analysis/heads.js';", 'src/train sits below src/analysis'],
    ['src/analysis/x.ts', "import { trainSae } from '../sae/index.js';", 'src/analysis sits below src/sae'],
    ['src/sae/x.ts', "import { buildDefaultModel } from '../recipes/index.js';", 'src/sae sits below src/recipes'],
    ['src/model/x.ts', "import { heatmap } from '../viz/charts.js';", 'src/model sits beside src/viz'],
    ['src/sae/x.ts', "import { attribute } from '../circuits/index.js';", 'src/sae sits below src/circuits'],
    ['src/circuits/x.ts', "import { buildApp } from '../server/app.js';", 'src/circuits sits below src/server'],
  ];
  for (const [file, code, message] of upward)
    it(`refuses ${code} in ${file}`, async () => {
      const errors = await layerErrors(file, `${code}\nexport const x = 1;\n`);
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0]!, new RegExp(message));
    });

  it('allows imports downward and within a layer', async () => {
    assert.deepEqual(
      await layerErrors(
        'src/analysis/x.ts',
        "import { hookName } from '../model/hook-names.js';\nimport { normPos } from './common.js';\nexport const x = [hookName, normPos];\n",
      ),
      [],
    );
    assert.deepEqual(
      await layerErrors('src/recipes/x.ts', "import { trainSae } from '../sae/index.js';\nexport const x = trainSae;\n"),
      [],
    );
  });
});
