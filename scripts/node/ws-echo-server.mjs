#!/usr/bin/env node
// Reference WebSocket echo server built on the `ws` package: a known-good peer
// for ws-client.mjs and for comparing upgate's behaviour with.
//
// Usage: node ws-echo-server.mjs [options] [port]
//   port                 TCP port on 127.0.0.1 (default 0: an ephemeral port)
//   --host=ADDR          listen address (default 127.0.0.1; keep it on loopback)
//   --deflate            accept permessage-deflate
//   --exit-on-stdin-eof  exit when standard input closes (lets a parent
//                        process that dies take the server with it)
//   --lifetime=SECONDS   exit after this long (default 0: run until signalled)
//
// Once listening it prints one JSON line on stdout:
//   {"port":PORT,"url":"ws://127.0.0.1:PORT/"}
// Every text or binary message is echoed back with the same type and payload;
// pings are answered by ws itself, and a close frame is echoed with its code
// and reason. SIGINT and SIGTERM stop it cleanly.

import { WebSocketServer } from 'ws';

let port = 0;
let host = '127.0.0.1';
let deflate = false;
let exitOnStdinEof = false;
let lifetime = 0;

for (const a of process.argv.slice(2)) {
  let m;
  if ((m = /^--host=(.+)$/.exec(a))) host = m[1];
  else if (a === '--deflate') deflate = true;
  else if (a === '--exit-on-stdin-eof') exitOnStdinEof = true;
  else if ((m = /^--lifetime=(\d+)$/.exec(a))) lifetime = Number(m[1]);
  else if (/^\d+$/.test(a) && Number(a) < 65536) port = Number(a);
  else {
    process.stderr.write(
      'usage: node ws-echo-server.mjs [--host=ADDR] [--deflate] [--exit-on-stdin-eof] [--lifetime=SECONDS] [port]\n',
    );
    process.exit(2);
  }
}

const wss = new WebSocketServer({ host, port, perMessageDeflate: deflate, maxPayload: 256 * 1024 * 1024 });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', (err) => {
    process.stderr.write(`ws-echo-server: connection error: ${err.message}\n`);
  });
});

wss.on('error', (err) => {
  process.stderr.write(`ws-echo-server: ${err.message}\n`);
  process.exit(1);
});

wss.on('listening', () => {
  const addr = wss.address();
  const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  process.stdout.write(`${JSON.stringify({ port: addr.port, url: `ws://${h}:${addr.port}/` })}\n`);
});

function shutdown() {
  for (const c of wss.clients) c.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
if (exitOnStdinEof) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
if (lifetime > 0) setTimeout(shutdown, lifetime * 1000).unref();
