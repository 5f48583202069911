/**
 * The workbench server for the browser tests, in its own process: model calls block the event
 * loop (a patching job for one layer at a time), and the test process must keep driving the
 * browser meanwhile. Prints `{"url": ...}` on stdout once listening; exits when stdin closes
 * (the test process is gone) or on SIGTERM.
 *
 * Usage: node --import tsx test/e2e/server.ts <webRoot> [model (default 'default')]
 */
import { loadModel } from '../../src/model/index.js';
import { createServer } from '../../src/server/app.js';
import { tunedLensBeside } from '../../src/server/index.js';

const [webRoot, spec = 'default'] = process.argv.slice(2);
if (!webRoot) throw new Error('usage: server.ts <webRoot> [model]');
const model = await loadModel(spec);
// The tuned lens beside the model, as `glassbox serve` finds it (models/default ships one).
const tunedLensDir = tunedLensBeside(spec);
const app = createServer({ model, modelName: spec, webRoot, ...(tunedLensDir !== undefined ? { tunedLensDir } : {}) });
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
if (!addr || typeof addr !== 'object') throw new Error('the server has no address');
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${addr.port}/` })}\n`);

const stop = () => {
  void app.close().finally(() => process.exit(0));
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
