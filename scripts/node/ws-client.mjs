#!/usr/bin/env node
// WebSocket test client for upgate, built on the `ws` package.
//
// Usage:
//   node ws-client.mjs [options] echo <url> <count> <size>...
//   node ws-client.mjs [options] frag <url>
//   node ws-client.mjs [options] stream <url> <size>
//   node ws-client.mjs [options] <url> <script.json>
//
// echo: for each of <count> rounds and each <size>, sends a text message and a
//       binary message of exactly <size> bytes and checks each echo is
//       byte-identical and of the same type; then sends a ping with a payload
//       and waits for the matching pong; then closes with 1000 "bye" and checks
//       the server's close code is 1000. Sizes accept k/m suffixes (KiB/MiB).
//       Without sizes: 0 1 125 126 127 1000 65535 65536 70000.
// frag: sends a text message in three fragments (one boundary splits a
//       multibyte UTF-8 character) with a ping between fragments, then a binary
//       message in three fragments; checks each echo is the concatenation and
//       that the pong arrives; then closes with 1000 "bye" as above.
// stream: a byte stream over binary messages (a websockify route): offers
//       the subprotocol "binary", sends <size> bytes in binary messages of
//       16 KiB and reads binary messages until as many bytes came back,
//       checking they are the bytes sent in order, however the server split
//       them into messages; then closes with 1000 "bye" as above.
// script: runs the steps of a JSON file:
//       {"timeoutMs": 20000, "deflate": false, "steps": [
//         {"op": "echo", "count": 2, "sizes": [0, 125, "64k"]},
//         {"op": "frag", "textParts": [3, 5, 7], "binaryParts": [10, 1]},
//         {"op": "ping", "payload": "hello"},
//         {"op": "close", "code": 1000, "reason": "bye", "expectCode": 1000}]}
//       "textParts"/"binaryParts" are fragment sizes in bytes (optional).
//
// Options (before the mode):
//   --timeout=MS      overall deadline (default 20000, env UPGATE_TEST_WS_CLIENT_TIMEOUT_MS)
//   --step-timeout=MS deadline for each single echo/pong/close (default 10000)
//   --deflate         offer permessage-deflate (off by default)
//   --header=K:V      extra handshake header (repeatable)
//   --verbose         log each step on stderr
//
// Output: one JSON line on stdout.
//   success: {"ok":true,"messages":N,"closeCode":1000,"extensions":"...",...} and
//            exit status 0; extensions names the extensions agreed ("" for
//            none)
//   failure: {"ok":false,"error":"...",...} (also a readable line on stderr), exit status 1
// Exit status 2 means bad usage.

import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';

const DEFAULT_SIZES = [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000];
const MAX_PAYLOAD = 256 * 1024 * 1024;

// ---------------------------------------------------------------- payloads --

// Characters cycled through to build text payloads: ASCII plus 2-, 3- and
// 4-byte UTF-8 sequences.
const TEXT_PATTERN = [...'abcdefghij', 'é', '€', '😀'];

// textPayload returns a valid UTF-8 Buffer of exactly n bytes. It cycles
// through TEXT_PATTERN and pads with ASCII where a multibyte character would
// not fit, so the content is deterministic for a given n.
export function textPayload(n) {
  const parts = [];
  let used = 0;
  let i = 0;
  while (used < n) {
    const ch = TEXT_PATTERN[i % TEXT_PATTERN.length];
    i++;
    const len = Buffer.byteLength(ch, 'utf8');
    if (used + len <= n) {
      parts.push(ch);
      used += len;
    } else {
      parts.push('abcdefghij'.slice(0, n - used));
      used = n;
    }
  }
  const buf = Buffer.from(parts.join(''), 'utf8');
  if (buf.length !== n) {
    throw new Error(`internal: text payload is ${buf.length} bytes, want ${n}`);
  }
  return buf;
}

// binaryPayload returns n bytes where byte i is (i*31+7) mod 256.
export function binaryPayload(n) {
  const buf = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) buf[i] = (i * 31 + 7) & 0xff;
  return buf;
}

// ----------------------------------------------------------------- helpers --

class Failure extends Error {
  constructor(message, details = {}) {
    super(message);
    this.details = details;
  }
}

function parseSize(s) {
  if (typeof s === 'number' && Number.isInteger(s) && s >= 0) return s;
  const m = /^(\d+)([kKmM]?)$/.exec(String(s).trim());
  if (!m) throw new Failure(`bad size ${JSON.stringify(s)}`, { usage: true });
  const mult = { '': 1, k: 1024, K: 1024, m: 1024 * 1024, M: 1024 * 1024 }[m[2]];
  const n = Number(m[1]) * mult;
  if (n > MAX_PAYLOAD) throw new Failure(`size ${s} exceeds ${MAX_PAYLOAD} bytes`, { usage: true });
  return n;
}

function parseCount(s) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Failure(`bad count ${JSON.stringify(s)}`, { usage: true });
  return n;
}

function describe(buf) {
  const head = buf.subarray(0, 16).toString('hex');
  return `${buf.length} bytes${buf.length ? ` (starts ${head}${buf.length > 16 ? '…' : ''})` : ''}`;
}

function firstDifference(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

// ------------------------------------------------------------------ client --

class Client {
  constructor(url, opts) {
    this.url = url;
    this.opts = opts;
    this.messages = 0; // echoes received and verified
    this.pongs = 0;
    this.inbox = [];
    this.pongInbox = [];
    this.waiter = null;
    this.pongWaiter = null;
    this.closed = null; // {code, reason} once the connection is closed
    this.closeWaiter = null;
    this.error = null;
  }

  log(msg) {
    if (this.opts.verbose) process.stderr.write(`ws-client: ${msg}\n`);
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, this.opts.protocols, {
        perMessageDeflate: this.opts.deflate,
        maxPayload: MAX_PAYLOAD,
        headers: this.opts.headers,
        handshakeTimeout: this.opts.stepTimeout,
      });
      this.ws = ws;
      let opened = false;
      ws.on('open', () => {
        opened = true;
        this.log(`connected to ${this.url}`);
        resolve();
      });
      ws.on('unexpected-response', (_req, res) => {
        reject(new Failure(`handshake rejected: HTTP ${res.statusCode} ${res.statusMessage || ''}`.trim()));
        res.resume();
        ws.terminate();
      });
      ws.on('message', (data, isBinary) => {
        this.inbox.push({ data: toBuffer(data), isBinary });
        this.wake('waiter');
      });
      ws.on('pong', (data) => {
        this.pongInbox.push(toBuffer(data));
        this.wake('pongWaiter');
      });
      ws.on('error', (err) => {
        this.error = err;
        if (!opened) reject(new Failure(`connect ${this.url}: ${err.message}`));
        this.wake('waiter');
        this.wake('pongWaiter');
      });
      ws.on('close', (code, reason) => {
        this.closed = { code, reason: reason.toString('utf8') };
        this.log(`closed: code ${code} reason ${JSON.stringify(this.closed.reason)}`);
        if (!opened) reject(new Failure(`connection closed before open (code ${code})`));
        this.wake('waiter');
        this.wake('pongWaiter');
        this.wake('closeWaiter');
      });
    });
  }

  wake(name) {
    const w = this[name];
    if (w) {
      this[name] = null;
      w();
    }
  }

  // wait blocks until check() returns a value other than undefined, re-checking
  // whenever the named waiter is woken, or fails after the step timeout.
  wait(name, what, check) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this[name] = null;
        reject(new Failure(`timed out after ${this.opts.stepTimeout} ms waiting for ${what}`));
      }, this.opts.stepTimeout);
      const poll = () => {
        let v;
        try {
          v = check();
        } catch (err) {
          clearTimeout(timer);
          reject(err);
          return;
        }
        if (v !== undefined) {
          clearTimeout(timer);
          resolve(v);
          return;
        }
        this[name] = poll;
      };
      poll();
    });
  }

  notClosed(what) {
    if (this.closed) {
      throw new Failure(
        `connection closed (code ${this.closed.code}, reason ${JSON.stringify(this.closed.reason)}) while waiting for ${what}`,
        { closeCode: this.closed.code },
      );
    }
    if (this.error) throw new Failure(`connection error while waiting for ${what}: ${this.error.message}`);
  }

  send(data, options) {
    return new Promise((resolve, reject) => {
      this.ws.send(data, options, (err) => (err ? reject(new Failure(`send: ${err.message}`)) : resolve()));
    });
  }

  async receive(what) {
    return this.wait('waiter', what, () => {
      if (this.inbox.length) return this.inbox.shift();
      this.notClosed(what);
      return undefined;
    });
  }

  async expectEcho(label, expected, isBinary) {
    const what = `echo of ${label}`;
    const got = await this.receive(what);
    if (got.isBinary !== isBinary) {
      throw new Failure(`${what}: got a ${got.isBinary ? 'binary' : 'text'} message, want ${isBinary ? 'binary' : 'text'}`);
    }
    if (!got.data.equals(expected)) {
      const at = firstDifference(got.data, expected);
      throw new Failure(`${what}: payload differs at byte ${at}: got ${describe(got.data)}, want ${describe(expected)}`);
    }
    this.messages++;
    this.log(`ok: ${what}`);
  }

  async echo(count, sizes) {
    for (let round = 1; round <= count; round++) {
      for (const size of sizes) {
        const text = textPayload(size);
        await this.send(text, { binary: false });
        await this.expectEcho(`text message of ${size} bytes (round ${round})`, text, false);
        const bin = binaryPayload(size);
        await this.send(bin, { binary: true });
        await this.expectEcho(`binary message of ${size} bytes (round ${round})`, bin, true);
      }
    }
  }

  // stream sends size bytes as binary messages of 16 KiB and reads the
  // binary messages that come back until they hold as many bytes.
  async stream(size) {
    const payload = binaryPayload(size);
    for (let off = 0; off < size; off += 16384) {
      await this.send(payload.subarray(off, Math.min(off + 16384, size)), { binary: true });
    }
    const parts = [];
    let got = 0;
    while (got < size) {
      const m = await this.receive(`stream bytes ${got} of ${size}`);
      if (!m.isBinary) throw new Failure('stream: got a text message');
      parts.push(m.data);
      got += m.data.length;
      this.messages++;
    }
    const back = Buffer.concat(parts);
    if (!back.equals(payload)) {
      const at = firstDifference(back, payload);
      throw new Failure(`stream: bytes differ at ${at}: got ${describe(back)}, want ${describe(payload)}`);
    }
    this.log(`ok: stream of ${size} bytes in ${parts.length} messages`);
  }

  async sendFragments(payload, partSizes, isBinary, pingBetween) {
    const parts = [];
    let off = 0;
    for (const n of partSizes) {
      parts.push(payload.subarray(off, Math.min(off + n, payload.length)));
      off += n;
    }
    if (off < payload.length) parts.push(payload.subarray(off));
    for (let i = 0; i < parts.length; i++) {
      const fin = i === parts.length - 1;
      await this.send(parts[i], { binary: isBinary, fin });
      if (i === 0 && pingBetween !== undefined) this.ws.ping(pingBetween);
    }
    return parts.length;
  }

  // frag sends a 30-byte text message as fragments of textParts bytes (plus
  // the remainder). Byte layout: "abcdefghij" 0-9, "é" 10-11, "€" 12-14,
  // "😀" 15-18, " fragmented" 19-29; the default boundaries 3, 13 and 17
  // split "€" and "😀", so UTF-8 can only be validated after reassembly.
  async frag(textParts = [3, 10, 4], binaryParts = [10, 1, 21]) {
    const text = Buffer.from('abcdefghijé€😀 fragmented', 'utf8');
    const ping = Buffer.from('ping-between-fragments');
    const n = await this.sendFragments(text, textParts, false, ping);
    await this.expectEcho(`fragmented text message (${n} fragments, ${text.length} bytes)`, text, false);
    await this.expectPong(ping);
    const bin = binaryPayload(binaryParts.reduce((a, b) => a + b, 0) + 1);
    const m = await this.sendFragments(bin, binaryParts, true);
    await this.expectEcho(`fragmented binary message (${m} fragments, ${bin.length} bytes)`, bin, true);
  }

  async expectPong(payload) {
    const what = `pong with payload ${JSON.stringify(payload.toString('utf8'))}`;
    const seen = [];
    try {
      await this.wait('pongWaiter', what, () => {
        while (this.pongInbox.length) {
          const p = this.pongInbox.shift();
          if (p.equals(payload)) return true;
          seen.push(`0x${p.toString('hex')}`);
        }
        this.notClosed(what);
        return undefined;
      });
    } catch (err) {
      if (seen.length) err.message += ` (pongs with other payloads seen: ${seen.join(', ')})`;
      throw err;
    }
    this.pongs++;
    this.log(`ok: ${what}`);
  }

  async ping(payload) {
    const buf = Buffer.from(payload, 'utf8');
    if (buf.length > 125) throw new Failure(`ping payload is ${buf.length} bytes; the limit is 125`, { usage: true });
    this.ws.ping(buf);
    await this.expectPong(buf);
  }

  async close(code = 1000, reason = 'bye', expectCode = 1000) {
    if (this.closed) {
      throw new Failure(`connection already closed by the server (code ${this.closed.code})`, { closeCode: this.closed.code });
    }
    this.ws.close(code, reason);
    await this.wait('closeWaiter', `close handshake (sent ${code} ${JSON.stringify(reason)})`, () =>
      this.closed ? true : undefined,
    );
    if (this.inbox.length) {
      throw new Failure(`${this.inbox.length} unexpected message(s) received before close`, { closeCode: this.closed.code });
    }
    if (expectCode !== null && this.closed.code !== expectCode) {
      throw new Failure(`server close code ${this.closed.code} (reason ${JSON.stringify(this.closed.reason)}), want ${expectCode}`, {
        closeCode: this.closed.code,
      });
    }
  }

  summary() {
    return {
      messages: this.messages,
      pongs: this.pongs,
      closeCode: this.closed ? this.closed.code : null,
      closeReason: this.closed ? this.closed.reason : null,
      extensions: this.ws ? this.ws.extensions : null,
    };
  }
}

// -------------------------------------------------------------------- main --

function usage(msg) {
  if (msg) process.stderr.write(`ws-client: ${msg}\n`);
  process.stderr.write(
    'usage: node ws-client.mjs [--timeout=MS] [--step-timeout=MS] [--deflate] [--header=K:V] [--verbose] \\\n' +
      '         echo <url> <count> <size>... | frag <url> | stream <url> <size> | <url> <script.json>\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    timeout: Number(process.env.UPGATE_TEST_WS_CLIENT_TIMEOUT_MS) || 20000,
    stepTimeout: 10000,
    deflate: false,
    headers: {},
    verbose: false,
    protocols: [],
  };
  const rest = [];
  for (const a of argv) {
    let m;
    if ((m = /^--timeout=(\d+)$/.exec(a))) opts.timeout = Number(m[1]);
    else if ((m = /^--step-timeout=(\d+)$/.exec(a))) opts.stepTimeout = Number(m[1]);
    else if (a === '--deflate') opts.deflate = true;
    else if ((m = /^--header=([^:]+):(.*)$/.exec(a))) opts.headers[m[1].trim()] = m[2].trim();
    else if (a === '--verbose' || a === '-v') opts.verbose = true;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else rest.push(a);
  }
  if (rest.length < 2) usage('missing arguments');

  const [mode, url, ...args] = rest;
  let plan;
  if (mode === 'echo') {
    if (args.length < 1) usage('echo needs <count>');
    const count = parseCount(args[0]);
    const sizes = args.length > 1 ? args.slice(1).map(parseSize) : DEFAULT_SIZES;
    plan = {
      mode,
      url,
      steps: [
        { op: 'echo', count, sizes },
        { op: 'ping', payload: 'upgate-ping' },
        { op: 'close', code: 1000, reason: 'bye', expectCode: 1000 },
      ],
    };
  } else if (mode === 'stream') {
    if (args.length !== 1) usage('stream needs <size>');
    opts.protocols = ['binary'];
    plan = { mode, url, steps: [{ op: 'stream', size: parseSize(args[0]) }, { op: 'close', code: 1000, reason: 'bye', expectCode: 1000 }] };
  } else if (mode === 'frag') {
    if (args.length) usage('frag takes only <url>');
    plan = { mode, url, steps: [{ op: 'frag' }, { op: 'close', code: 1000, reason: 'bye', expectCode: 1000 }] };
  } else if (/^wss?:\/\//.test(mode)) {
    if (rest.length !== 2) usage('script mode takes <url> <script.json>');
    const file = rest[1];
    let script;
    try {
      script = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      usage(`cannot read script ${file}: ${err.message}`);
    }
    if (!Array.isArray(script.steps) || !script.steps.length) usage(`script ${file} has no "steps"`);
    if (script.timeoutMs) opts.timeout = Number(script.timeoutMs);
    if (script.stepTimeoutMs) opts.stepTimeout = Number(script.stepTimeoutMs);
    if (script.deflate !== undefined) opts.deflate = Boolean(script.deflate);
    const steps = script.steps.map((s, i) => {
      switch (s.op) {
        case 'echo':
          return { op: 'echo', count: s.count === undefined ? 1 : parseCount(s.count), sizes: (s.sizes || DEFAULT_SIZES).map(parseSize) };
        case 'frag':
          return { op: 'frag', textParts: s.textParts, binaryParts: s.binaryParts };
        case 'ping':
          return { op: 'ping', payload: String(s.payload ?? 'upgate-ping') };
        case 'close':
          return {
            op: 'close',
            code: s.code ?? 1000,
            reason: s.reason ?? 'bye',
            expectCode: s.expectCode === undefined ? (s.code ?? 1000) : s.expectCode,
          };
        default:
          usage(`script ${file}: step ${i}: unknown op ${JSON.stringify(s.op)}`);
      }
      return null;
    });
    plan = { mode: 'script', url: mode, steps };
  } else {
    usage(`unknown mode ${JSON.stringify(mode)}`);
  }
  if (!/^wss?:\/\//.test(plan.url)) usage(`bad url ${JSON.stringify(plan.url)}`);
  return { opts, plan };
}

let finished = false;

function finish(ok, fields) {
  if (finished) return;
  finished = true;
  process.stdout.write(`${JSON.stringify({ ok, ...fields })}\n`);
  if (!ok) process.stderr.write(`ws-client: FAIL: ${fields.error}\n`);
  // Flush stdout before leaving, even when the socket is still open.
  process.stdout.write('', () => process.exit(ok ? 0 : 1));
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof Failure && err.details.usage) usage(err.message);
    throw err;
  }
  const { opts, plan } = parsed;
  const client = new Client(plan.url, opts);
  let step = 'connect';

  const deadline = setTimeout(() => {
    finish(false, { mode: plan.mode, step, error: `overall timeout of ${opts.timeout} ms exceeded during ${step}`, ...client.summary() });
  }, opts.timeout);

  try {
    await client.open();
    for (const s of plan.steps) {
      step = s.op;
      switch (s.op) {
        case 'echo':
          await client.echo(s.count, s.sizes);
          break;
        case 'frag':
          await client.frag(s.textParts, s.binaryParts);
          break;
        case 'stream':
          await client.stream(s.size);
          break;
        case 'ping':
          await client.ping(s.payload);
          break;
        case 'close':
          await client.close(s.code, s.reason, s.expectCode);
          break;
        default:
          throw new Failure(`unknown step ${s.op}`);
      }
    }
    clearTimeout(deadline);
    if (client.closed === null) client.ws.terminate();
    finish(true, { mode: plan.mode, ...client.summary() });
  } catch (err) {
    clearTimeout(deadline);
    if (client.ws && client.closed === null) client.ws.terminate();
    finish(false, { mode: plan.mode, step, error: err.message, ...client.summary(), ...(err.details || {}) });
  }
}

// Run only when executed directly, so the payload generators can be imported.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((err) => {
    finish(false, { error: `internal error: ${err && err.stack ? err.stack : err}` });
  });
}
