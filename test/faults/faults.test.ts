/**
 * The fault suite (issue 16): bad files, bad configs, bad tokens, hook filters, hostile Hub responses, bad SAEs
 * and runs past what the machine or the model can hold, each built at test time from the
 * fixtures. Every case must end in a clear error (naming the file and the field) or a correct
 * result; the last test prints the counts and asserts no crash and no silent wrong result.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanup } from './build.js';
import { configCases } from './configs.js';
import { fileCases } from './files.js';
import { tokenCases } from './tokens.js';
import { saeCases } from './sae.js';
import { hubCases, startHub, stopHub } from './hub.js';
import { runCases } from './runs.js';
import { filterCases } from './filters.js';
import { cliCases } from './cli.js';
import { failures, registerCases, tally } from './harness.js';

registerCases('bad files', fileCases);
registerCases('bad configs', configCases);
registerCases('bad tokens', tokenCases);
registerCases('hook filters', filterCases);
registerCases('bad SAEs', saeCases);
before(startHub);
after(stopHub);
registerCases('hostile Hub responses', hubCases);
registerCases('runs past the memory', runCases);
registerCases('the CLI', cliCases);

test('the counts: tried, clear errors, correct results, crashes, silent wrong results', () => {
  const line =
    `fault suite: ${tally.tried} tried, ${tally.clear} clear errors, ${tally.correct} correct results, ` +
    `${tally.crash} crashes, ${tally.silent} silent wrong results`;
  console.log(line);
  for (const f of failures) console.log(`  ${f}`);
  assert.equal(tally.crash, 0, line);
  assert.equal(tally.silent, 0, line);
  assert.equal(tally.tried, tally.clear + tally.correct + tally.crash + tally.silent);
});

after(cleanup);
