// A small HTTP server on 127.0.0.1 whose answers a test switches at will: 503 while the test does
// something to the subscriber's tree, then the file (whole or one byte range). It counts the
// requests per path so tests assert how often a message was tried, not how long it took.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultServer {
  url: string;
  /** path (e.g. "/d/a.txt") → bytes served once `failing` is off. */
  files: Map<string, Uint8Array>;
  /** Answer 503 to every request while true. */
  failing: boolean;
  /** Send the headers and the first byte of each answer, then nothing more (a stalled transfer). */
  stalling: boolean;
  requests: Map<string, number>;
  stop(): Promise<void>;
}

export async function startFaultServer(): Promise<FaultServer> {
  const state = { files: new Map<string, Uint8Array>(), failing: true, stalling: false, requests: new Map<string, number>() };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    state.requests.set(path, (state.requests.get(path) ?? 0) + 1);
    const body = state.files.get(path);
    if (state.failing) {
      res.writeHead(503, { 'content-length': '0', connection: 'close' }).end();
      return;
    }
    if (!body) {
      res.writeHead(404, { 'content-length': '0' }).end();
      return;
    }
    if (state.stalling) {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.write(body.subarray(0, 1));
      return; // the rest never comes; stop() closes the connection
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
      res.writeHead(206, { 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${body.length}` });
      res.end(body.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
