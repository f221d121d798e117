/**
 * TlsGuard on real TLS byte streams: OpenSSL (through node:tls) as client and server on loopback,
 * a relay in between records both directions. A TLS connection is one `tls` drop plus skipped
 * bytes, never http_malformed, however the stream is cut; a midstream pickup at a record boundary
 * is `tls` too, and anywhere else only skipped bytes; HTTP streams are not touched.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { SecureVersion } from 'node:tls';
import { selfSignedCert } from '../../scripts/lab/cert.js';
import { HttpRequestParser } from '../../src/http/parser.js';
import { sniffTls, TlsGuard } from '../../src/http/tls.js';
import type { HttpDropReason } from '../../src/http/types.js';

interface Outcome {
  requests: number;
  lost: Partial<Record<HttpDropReason, number>>;
  skipped: number;
}

/** Feeds `pieces` through TlsGuard → HttpRequestParser, as the pipeline does. */
function run(pieces: Array<Buffer | { gap: number }>, midstream = false): Outcome {
  const out: Outcome = { requests: 0, lost: {}, skipped: 0 };
  const onDrop = (reason: HttpDropReason, requests: number, bytes: number) => {
    if (requests > 0) out.lost[reason] = (out.lost[reason] ?? 0) + requests;
    out.skipped += bytes;
  };
  const parser = new HttpRequestParser({ onRequest: () => out.requests++, onDrop }, undefined, { midstream });
  const guard = new TlsGuard(parser, midstream, (requests, bytes) => onDrop('tls', requests, bytes));
  for (const p of pieces) {
    if (Buffer.isBuffer(p)) {
      // From a scratch buffer that is overwritten afterwards: the guard must copy what it holds.
      const scratch = Buffer.concat([Buffer.from([0xee]), p]);
      guard.push(scratch, 1, p.length);
      scratch.fill(0x41);
    } else guard.gap(p.gap);
  }
  guard.end();
  return out;
}

function cuts(b: Buffer, at: number[]): Buffer[] {
  const out: Buffer[] = [];
  let s = 0;
  for (const a of at) {
    out.push(b.subarray(s, a));
    s = a;
  }
  out.push(b.subarray(s));
  return out.filter((x) => x.length > 0);
}

/** Offsets where TLS records start in a stream that begins with one. */
function recordStarts(b: Buffer): number[] {
  const starts: number[] = [];
  for (let i = 0; i + 5 <= b.length; i += 5 + b.readUInt16BE(i + 3)) starts.push(i);
  return starts;
}

interface Captured {
  c2s: Buffer;
  s2c: Buffer;
}

let dir: string;
let server: https.Server;
const sessions = new Map<string, Captured>();

/** Three HTTPS requests on one connection through a recording relay; both directions' bytes. */
async function capture(version: SecureVersion): Promise<Captured> {
  const c2s: Buffer[] = [];
  const s2c: Buffer[] = [];
  const relay = net.createServer((sock) => {
    const up = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    sock.on('data', (d) => { c2s.push(d); up.write(d); });
    up.on('data', (d) => { s2c.push(d); sock.write(d); });
    sock.on('end', () => up.end());
    up.on('end', () => sock.end());
    sock.on('error', () => up.destroy());
    up.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const port = (relay.address() as net.AddressInfo).port;
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false, maxVersion: version, minVersion: version });
  for (const p of ['/a', '/b?x=1', '/c']) {
    await new Promise<void>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      }).on('error', reject);
    });
  }
  agent.destroy();
  await new Promise((r) => setTimeout(r, 50));
  relay.close();
  return { c2s: Buffer.concat(c2s), s2c: Buffer.concat(s2c) };
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-tls-'));
  const { cert, key } = selfSignedCert(dir);
  server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  for (const v of ['TLSv1.2', 'TLSv1.3'] as const) sessions.set(v, await capture(v));
});

after(() => {
  server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('TLS at a connection start', () => {
  for (const v of ['TLSv1.2', 'TLSv1.3']) {
    it(`${v}: the whole client stream is one tls drop, every byte counted, however it is cut`, () => {
      const { c2s } = sessions.get(v)!;
      assert.ok(c2s.length > 300, `captured ${c2s.length} bytes`);
      assert.equal(c2s[0], 22, 'starts with a handshake record');
      const want: Outcome = { requests: 0, lost: { tls: 1 }, skipped: c2s.length };
      assert.deepEqual(run([c2s]), want);
      for (let i = 1; i <= 6; i++) assert.deepEqual(run(cuts(c2s, [i])), want, `cut at ${i}`);
      assert.deepEqual(run(cuts(c2s, [1, 2, 3, 4, 5, 6])), want, 'byte by byte');
    });

    it(`${v}: the server's stream (ServerHello first) is recognised too`, () => {
      const { s2c } = sessions.get(v)!;
      assert.equal(sniffTls(s2c, 0, s2c.length, false), 'tls');
    });
  }

  it('an SSLv2-compatible ClientHello (RFC 5246 E.2) is TLS', () => {
    // msg_length 0x2e, CLIENT-HELLO, version 3.1, cipher_spec_length 21, session_id 0, challenge 16.
    const hello = Buffer.concat([Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]), Buffer.alloc(21 + 16, 7)]);
    assert.deepEqual(run([hello]), { requests: 0, lost: { tls: 1 }, skipped: hello.length });
  });

  it('HTTP is untouched; bytes that only look like a record start stay http_malformed', () => {
    const get = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.deepEqual(run([get]), { requests: 1, lost: {}, skipped: 0 });
    // 0x16 with version 3.9: not TLS, and not HTTP either.
    const odd = Buffer.from([0x16, 0x03, 0x09, 0x00, 0x10, 0x41, 0x42]);
    assert.deepEqual(run([odd]), { requests: 0, lost: { http_malformed: 1 }, skipped: odd.length });
    // A stream that ends after two bytes of a would-be record: the parser has the last word.
    assert.deepEqual(run([Buffer.from([0x16, 0x03])]), { requests: 0, lost: { http_malformed: 1 }, skipped: 2 });
  });
});

describe('TLS picked up midstream', () => {
  for (const v of ['TLSv1.2', 'TLSv1.3']) {
    it(`${v}: from any record boundary after the handshake: tls; from elsewhere: skipped bytes, never http_malformed`, () => {
      const { c2s } = sessions.get(v)!;
      const starts = recordStarts(c2s);
      assert.equal(starts.at(-1)! + 5 + c2s.readUInt16BE(starts.at(-1)! + 3), c2s.length, 'the stream is whole records');
      for (const s of starts.slice(1)) {
        const rest = c2s.subarray(s);
        assert.deepEqual(run([rest], true), { requests: 0, lost: { tls: 1 }, skipped: rest.length }, `from record at ${s}`);
      }
      for (let s = 1; s < c2s.length; s += 7) {
        if (starts.includes(s)) continue;
        const rest = c2s.subarray(s);
        const o = run([rest], true);
        assert.equal(o.requests, 0);
        assert.equal(o.lost.http_malformed, undefined, `from ${s}: ${JSON.stringify(o)}`);
        assert.equal(o.skipped, rest.length, `from ${s}: every byte counted`);
      }
    });
  }

  it('a hole before the first byte: the bytes after it are judged as a midstream pickup', () => {
    const { c2s } = sessions.get('TLSv1.3')!;
    const starts = recordStarts(c2s);
    const rest = c2s.subarray(starts[2]);
    // The parser counts the hole as it would any (a request lost in it), then the rest is tls.
    assert.deepEqual(run([{ gap: starts[2] }, rest]), { requests: 0, lost: { stream_gap: 1, tls: 1 }, skipped: rest.length });
  });

  it('HTTP picked up midstream still resyncs on its next request', () => {
    const o = run([Buffer.from('dy-bytes\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n')], true);
    assert.deepEqual(o, { requests: 1, lost: {}, skipped: 10 });
  });
});
