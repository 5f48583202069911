/**
 * `glassbox serve [model]`: the workbench and its JSON API over one model (src/server), on
 * 127.0.0.1:7860 unless told otherwise.
 */
import type { Command } from 'commander';
import open from 'open';
import { serve } from '../server/index.js';
import { intFlag } from './flags.js';

/**
 * Opens `url` in the user's browser (the `open` package: xdg-open, open, start), or in the
 * program named by $BROWSER when set (the usual convention). A machine without a browser (a
 * server, CI) is not an error: the URL is already printed.
 */
async function openBrowser(url: string): Promise<void> {
  const hint = () => process.stderr.write(`glassbox: could not open a browser here; open ${url} yourself\n`);
  try {
    const browser = process.env.BROWSER?.trim();
    const child = await open(url, browser ? { app: { name: browser } } : {});
    child.once('error', hint);
    child.once('exit', (code) => {
      if (code !== 0 && code !== null) hint();
    });
    child.unref();
  } catch {
    hint();
  }
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the workbench (web app + JSON API) for a model on http://127.0.0.1:7860/')
    .argument('[model]', "'default', a Hugging Face model directory or a hub id", 'default')
    .option('-p, --port <n>', 'port (0 picks a free one)', '7860')
    .option('--host <host>', 'interface to listen on; anything but 127.0.0.1/localhost/::1 exposes the server to your network', '127.0.0.1')
    .option('--allowed-hosts <names>', 'comma-separated host names clients use to reach the server (required with a non-loopback --host)')
    .option('--max-tokens <n>', "longest prompt accepted, in tokens (default the model's context)")
    .option('--max-new-tokens <n>', 'most tokens one steering request may generate', '128')
    .option('--max-jobs <n>', 'most patching jobs running at once (more are refused with 429)', '4')
    .option('--session-budget <MiB>', "most memory the model's compiled sessions keep, in MiB (least recently used are released)", '512')
    .option('--web <dir>', 'the built web app to serve (default web/dist)')
    .option(
      '--graph <file>',
      'an attribution graph JSON file (from `glassbox graph` or circuit-tracer) to open in the Graph view; repeatable',
      (file: string, files: string[]) => [...files, file],
      [] as string[],
    )
    .option(
      '--transcoders <dir>',
      'transcoders (one per layer, SAELens layout, or a CLT) to trace prompts into graphs and intervene in the Graph view',
    )
    .option(
      '--tuned-lens <dir>',
      "a tuned lens (glassbox tuned-lens train) for the Logit lens view's tuned-lens switch (default: the model folder's tuned-lens/, if any)",
    )
    .option('--no-tuned-lens', "do not load the model folder's tuned-lens/")
    .option('--open', 'open the workbench in the default browser once it is listening')
    .option(
      '--sae <dir-or-id>',
      'attach an SAE or transcoder: a directory (SAELens layout; its feature store in DIR or DIR/features is used when present) or a pretrained RELEASE/SAE_ID; repeatable',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--allow-model-mismatch', 'attach SAEs whose cfg.json model_name names another model (the shapes are still checked)')
    .action(
      async (
        spec: string,
        opts: {
          port: string;
          host: string;
          allowedHosts?: string;
          maxTokens?: string;
          maxNewTokens: string;
          maxJobs: string;
          sessionBudget: string;
          web?: string;
          graph: string[];
          transcoders?: string;
          tunedLens?: string | false;
          open?: boolean;
          sae?: string[];
          allowModelMismatch?: boolean;
        },
      ) => {
        const running = await serve({
          model: spec,
          host: opts.host,
          ...(opts.allowedHosts !== undefined
            ? {
                allowedHosts: opts.allowedHosts
                  .split(',')
                  .map((h) => h.trim())
                  .filter((h) => h !== ''),
              }
            : {}),
          port: intFlag('port', opts.port, 0, 65535),
          maxNewTokens: intFlag('max-new-tokens', opts.maxNewTokens, 1),
          maxJobs: intFlag('max-jobs', opts.maxJobs, 1),
          sessionBudgetBytes: intFlag('session-budget', opts.sessionBudget, 1, 2 ** 30) * 2 ** 20,
          ...(opts.maxTokens !== undefined ? { maxTokens: intFlag('max-tokens', opts.maxTokens, 1) } : {}),
          ...(opts.web !== undefined ? { webRoot: opts.web } : {}),
          ...(opts.sae ? { saes: opts.sae } : {}),
          ...(opts.allowModelMismatch ? { allowModelMismatch: true } : {}),
          ...(opts.graph.length > 0 ? { graphFiles: opts.graph } : {}),
          ...(opts.transcoders !== undefined ? { transcodersDir: opts.transcoders } : {}),
          ...(opts.tunedLens !== undefined ? { tunedLensDir: opts.tunedLens } : {}),
        });
        if (opts.open) await openBrowser(running.url);
        const stop = () => {
          void running.close().finally(() => process.exit(0));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      },
    );
}
