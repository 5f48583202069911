/**
 * A stand-in for an OpenAI-compatible chat-completions server, to try `glassbox sae explain`
 * without a language model or a key:
 *
 *   node --import tsx examples/chat-stub.ts [--port 8089]
 *   npm run glassbox -- sae explain --features DIR --api-base http://127.0.0.1:8089/v1 --model stub
 *
 * It is not a model. Asked for an explanation, it answers with the token marked `<<...>>` most
 * often ('the token " the"'); asked the detection question, it answers 1 for the excerpts holding
 * that token. So its explanations are token detectors, and their detection scores say how much of
 * a feature one token explains. Use a real endpoint (Ollama: http://localhost:11434/v1, vLLM,
 * a hosted API) for real explanations.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

interface Message {
  role: string;
  content: string;
}

/** The stub's answer to a chat (see the file's doc). */
export function chatStubAnswer(messages: readonly Message[]): string {
  const system = messages.find((m) => m.role === 'system')?.content ?? '';
  const user = messages.find((m) => m.role === 'user')?.content ?? '';
  if (!/which fire|fires somewhere/i.test(system)) {
    const counts = new Map<string, number>();
    for (const m of user.matchAll(/<<([\s\S]*?)>>/g)) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
    const best = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
    return best === undefined ? 'no token is marked' : `the token ${JSON.stringify(best)}`;
  }
  const quoted = /^Explanation: the token ("(?:[^"\\]|\\.)*")/m.exec(user)?.[1];
  const token = quoted !== undefined ? (JSON.parse(quoted) as string) : null;
  const items = user.split('\n').filter((l) => /^\d+\. /.test(l));
  return JSON.stringify(items.map((l) => (token !== null && l.replace(/^\d+\. /, '').includes(token) ? 1 : 0)));
}

/** Starts the stub on 127.0.0.1:`port` (0: any free port); returns its API base and a close function. */
export async function startChatStub(port = 0): Promise<{ apiBase: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not found"}');
        return;
      }
      let messages: Message[];
      try {
        messages = (JSON.parse(raw) as { messages: Message[] }).messages;
        if (!Array.isArray(messages)) throw new Error('messages is not a list');
      } catch (e) {
        res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: String(e) }));
        return;
      }
      const content = chatStubAnswer(messages);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'stub',
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    apiBase: `http://127.0.0.1:${bound}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--port');
  const port = i >= 0 ? Number(process.argv[i + 1]) : 8089;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${process.argv[i + 1]}: expected a port number`);
  const { apiBase } = await startChatStub(port);
  console.log(`chat stub listening: --api-base ${apiBase} (Ctrl-C stops it)`);
}
