/**
 * A real HTTP server that records every request it receives as a JSON line: method, URL, raw
 * headers in order with their case, and the body's length and SHA-256. Run as production and as
 * the test environment in the lab.
 *
 *   node recorder.js --out FILE --listen 10.213.1.2:80 [--listen [fd00::2]:80]
 *     [--fault 500:/path] [--fault body:/path] [--fault header:/path]
 *     [--tls-listen 10.213.1.2:443 --cert CERT.pem --key KEY.pem]
 * GET /big/N answers N MiB (at most 64), the same bytes every time.
 *
 * --fault makes a test environment misbehave on purpose on one path (shadow-testing tests):
 * answer 500, answer a different body, or add a header; other paths answer as production does.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

const args = process.argv.slice(2);
const listens: string[] = [];
/** HTTPS listeners (production on a TLS port, for the tests that mirror one). */
const tlsListens: string[] = [];
let cert = '';
let key = '';
const blackholes: string[] = [];
const faults = new Map<string, string>();
let out = '';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--listen') listens.push(args[++i]);
  else if (args[i] === '--fault') {
    const [kind, ...rest] = args[++i].split(':');
    if (!['500', 'body', 'header'].includes(kind) || !rest.length) throw new Error(`--fault 500|body|header:/path, got ${args[i]}`);
    faults.set(rest.join(':'), kind);
  }
  else if (args[i] === '--out') out = args[++i];
  else if (args[i] === '--tls-listen') tlsListens.push(args[++i]);
  else if (args[i] === '--cert') cert = args[++i];
  else if (args[i] === '--key') key = args[++i];
  // Accepts connections and reads requests but never answers: a hung test environment.
  else if (args[i] === '--blackhole') blackholes.push(args[++i]);
}
if (!out || listens.length + tlsListens.length === 0 || (tlsListens.length > 0 && (!cert || !key))) {
  process.stderr.write('usage: recorder --out FILE --listen HOST:PORT [--listen ...] [--tls-listen HOST:PORT --cert FILE --key FILE]\n');
  process.exit(2);
}
const sink = fs.createWriteStream(out, { flags: 'a' });
let n = 0;

const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
  const h = createHash('sha256');
  let len = 0;
  req.on('data', (c: Buffer) => {
    h.update(c);
    len += c.length;
  });
  req.on('end', () => {
    sink.write(`${JSON.stringify({ method: req.method, url: req.url, version: req.httpVersion, rawHeaders: req.rawHeaders, rawTrailers: req.rawTrailers, bodyLen: len, bodySha: h.digest('hex') })}\n`);
    n++;
    const big = /^\/big\/(\d+)$/.exec((req.url ?? '').split('?')[0]);
    if (big) {
      // /big/N: an N MiB answer (at most 64), streamed, the same bytes every time.
      const mib = Math.min(64, Number(big[1]));
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(mib * 1024 * 1024) });
      const chunk = Buffer.alloc(1024 * 1024, 'x');
      let sent = 0;
      const more = () => {
        while (sent < mib) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
      return;
    }
    const fault = faults.get((req.url ?? '').split('?')[0]);
    if (fault === '500') res.writeHead(500, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
    else if (fault === 'header') res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2', 'X-Shadow-Extra': '1' });
    else if (fault === 'body') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '7' });
      res.end('changed');
      return;
    } else res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
    res.end('ok');
  });
};

let ready = 0;
const total = listens.length + blackholes.length + tlsListens.length;
for (const l of blackholes) {
  const idx = l.lastIndexOf(':');
  const hole = net.createServer((sock) => {
    sock.on('data', () => {});
    sock.on('error', () => {});
  });
  hole.listen(Number(l.slice(idx + 1)), l.slice(0, idx).replace(/^\[|\]$/g, ''), () => {
    if (++ready === total) process.stdout.write('ready\n');
  });
}
for (const l of listens) {
  const idx = l.lastIndexOf(':');
  const host = l.slice(0, idx).replace(/^\[|\]$/g, '');
  const port = Number(l.slice(idx + 1));
  // Large limits: the lab sends 16 KB cookies and 6 KB URLs on purpose.
  const server = http.createServer({ maxHeaderSize: 1024 * 1024, keepAliveTimeout: 30_000, requestTimeout: 0, headersTimeout: 60_000 }, handler);
  server.listen(port, host, () => {
    if (++ready === total) process.stdout.write('ready\n');
  });
}
for (const l of tlsListens) {
  const idx = l.lastIndexOf(':');
  const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), keepAliveTimeout: 30_000 }, handler);
  server.listen(Number(l.slice(idx + 1)), l.slice(0, idx).replace(/^\[|\]$/g, ''), () => {
    if (++ready === total) process.stdout.write('ready\n');
  });
}
const stop = () => sink.end(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
void n;
