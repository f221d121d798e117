/**
 * A real h2c (HTTP/2 prior knowledge) server that records what it receives, and a node:http2
 * client, for the namespace lab.
 *
 *   node h2.js server --listen 10.213.1.2:8080 --out FILE
 *   node h2.js client --url http://10.213.1.2:8080 [--requests 40] [--big-bytes 1572864] [--prefix n]
 *
 * The server writes one JSON line per request: pseudo-header fields and regular fields in wire
 * order (node's rawHeaders), the body's length and SHA-256, and the trailers. It answers 200
 * with a small body and a trailer, so answers carry trailers too.
 *
 * The client opens one session (one connection) and sends, concurrently so that streams
 * interleave: GETs, POSTs with bodies, one body of `big-bytes`, and requests that end with
 * trailers. Every request carries `x-test-id`. Prints one JSON line: { ids, failures, seconds }.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';

const argv = process.argv.slice(2);
const opt = (name: string, dflt?: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};

export interface H2Record {
  rawHeaders: string[];
  bodyLen: number;
  bodySha: string;
  rawTrailers: string[];
}

function server(): void {
  const listen = opt('listen');
  const out = opt('out');
  if (!listen || !out) throw new Error('usage: h2.js server --listen HOST:PORT --out FILE');
  const sink = fs.createWriteStream(out, { flags: 'a' });
  const s = http2.createServer((req, res) => {
    const h = createHash('sha256');
    let len = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      len += c.length;
    });
    req.on('end', () => {
      const rec: H2Record = { rawHeaders: req.rawHeaders, bodyLen: len, bodySha: h.digest('hex'), rawTrailers: req.rawTrailers };
      sink.write(`${JSON.stringify(rec)}\n`);
      res.addTrailers({ 'x-served-bytes': String(len) });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    });
  });
  const i = listen.lastIndexOf(':');
  s.listen(Number(listen.slice(i + 1)), listen.slice(0, i).replace(/^\[|\]$/g, ''), () => process.stdout.write('ready\n'));
  const stop = () => s.close(() => sink.end(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function client(): Promise<void> {
  const url = opt('url');
  if (!url) throw new Error('usage: h2.js client --url http://HOST:PORT');
  const n = Number(opt('requests', '40'));
  const big = Number(opt('big-bytes', String(1.5 * 1024 * 1024)));
  const prefix = opt('prefix', 'n')!;
  const start = Date.now();
  const session = http2.connect(url);
  session.on('error', () => {});
  const ids: string[] = [];
  const failures: string[] = [];
  const send = (id: string, headers: http2.OutgoingHttpHeaders, body: Buffer | null, trailers: http2.OutgoingHttpHeaders | null) =>
    new Promise<void>((resolve) => {
      const req = session.request({ ...headers, 'x-test-id': id }, { endStream: body === null && trailers === null, waitForTrailers: trailers !== null });
      if (trailers) req.on('wantTrailers', () => req.sendTrailers(trailers));
      const t = setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 20_000);
      req.on('response', (h) => {
        if (h[':status'] !== 200) failures.push(`${id}: status ${h[':status']}`);
      });
      req.on('data', () => {});
      req.on('end', () => {
        clearTimeout(t);
        ids.push(id);
        resolve();
      });
      req.on('error', (e) => {
        clearTimeout(t);
        failures.push(`${id}: ${e.message}`);
        resolve();
      });
      if (body !== null) req.end(body);
      else if (trailers !== null) req.end();
    });
  const all: Array<Promise<void>> = [];
  for (let k = 0; k < n; k++) {
    const id = `${prefix}-${k}`;
    switch (k % 4) {
      case 0: all.push(send(id, { ':method': 'GET', ':path': `/h2/get/${k}?q=${k}`, accept: 'text/plain', 'x-dup': ['a', 'b'] }, null, null)); break;
      case 1: all.push(send(id, { ':method': 'POST', ':path': `/h2/post/${k}`, 'content-type': 'application/octet-stream' }, randomBytes(1 + k * 97), null)); break;
      case 2: all.push(send(id, { ':method': 'POST', ':path': `/h2/trailers/${k}`, 'content-type': 'text/plain' }, null, { 'x-checksum': `sum-${k}`, 'x-count': String(k) })); break;
      default: all.push(send(id, { ':method': 'PUT', ':path': `/h2/put/${k}` }, Buffer.from(`body ${k}`), null));
    }
  }
  // A body over 1 MiB, with trailers after it, while the others are in flight.
  const bigId = `${prefix}-big`;
  all.push(sendBig(session, bigId, big).then((e) => void (e ? failures.push(e) : ids.push(bigId))));
  await Promise.all(all);
  session.close();
  process.stdout.write(`${JSON.stringify({ ids, failures, seconds: (Date.now() - start) / 1000 })}\n`);
}

/** A POST of `bytes` random bytes in 64 KiB writes, ended with a trailer; resolves with an error text or null. */
function sendBig(session: http2.ClientHttp2Session, id: string, bytes: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': '/h2/big-body', 'content-type': 'application/octet-stream', 'x-test-id': id }, { waitForTrailers: true });
    const body = randomBytes(bytes);
    req.on('wantTrailers', () => req.sendTrailers({ 'x-body-sha256': createHash('sha256').update(body).digest('hex') }));
    const t = setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 30_000);
    req.on('data', () => {});
    req.on('end', () => {
      clearTimeout(t);
      resolve(null);
    });
    req.on('error', (e) => {
      clearTimeout(t);
      resolve(`${id}: ${e.message}`);
    });
    for (let p = 0; p < body.length; p += 65536) req.write(body.subarray(p, p + 65536));
    req.end();
  });
}

if (argv[0] === 'server') server();
else if (argv[0] === 'client') {
  client().catch((e: unknown) => {
    process.stderr.write(`${String(e)}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: h2.js server|client ...\n');
  process.exit(2);
}
