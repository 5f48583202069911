/**
 * A workbench server in its own process, for the server fault tests (so its memory is its own):
 * `node --import tsx test/faults/server-child.ts '<options JSON>'` loads the model (`model`,
 * default 'default'), serves on 127.0.0.1 with the `server` options, and prints `{"url": ...}`
 * once listening. It exits when stdin closes (the test process is gone) or on SIGTERM.
 */
import { loadModel } from '../../src/model/index.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as { model?: string; server?: Partial<ServerOptions> };
const model = await loadModel(opts.model ?? 'default');
const app = createServer({ ...opts.server, model, webRoot: null });
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
if (!addr || typeof addr !== 'object') throw new Error('the server has no address');
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${addr.port}` })}\n`);

const stop = () => {
  void app.close().finally(() => process.exit(0));
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
