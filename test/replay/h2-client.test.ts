/**
 * Replay to HTTP/2 destinations (src/replay/h2-client.ts behind Destination), against real
 * node:http2 servers on loopback: h2c with prior knowledge and TLS with ALPN h2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { ConfigError } from '../../src/errors.js';
import type { ResponseDigest } from '../../src/http/response.js';
import { Destination, parseDestination, type AnswerSink, type OutgoingRequest } from '../../src/replay/destination.js';
import { selfSignedPair } from '../../scripts/lab/cert.js';
import { Outcomes, settle } from '../fixtures/outcomes.js';

interface Seen {
  raw: string[];
  body: Buffer;
  trailers: string[];
  session: http2.ServerHttp2Session;
  alpn: string | false | undefined;
}

type Answer = (s: http2.ServerHttp2Stream, seen: Seen) => void;

/** A node:http2 server (h2c, or TLS with `creds`) that records each stream, then answers with `answer`. */
async function h2Server(answer: Answer, o: { creds?: { key: Buffer; cert: Buffer }; maxConcurrentStreams?: number; keep?: (st: http2.ServerHttp2Stream) => boolean } = {}) {
  const seen: Seen[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  let active = 0;
  let peak = 0;
  const settings = { maxConcurrentStreams: o.maxConcurrentStreams ?? 100 };
  const srv = o.creds ? http2.createSecureServer({ ...o.creds, settings, allowHTTP1: false }) : http2.createServer({ settings });
  srv.on('session', (s) => {
    sessions.add(s);
    s.on('error', () => {});
    s.on('close', () => sessions.delete(s));
  });
  srv.on('stream', (st: http2.ServerHttp2Stream, _h: unknown, _f: unknown, raw: string[]) => {
    active++;
    peak = Math.max(peak, active);
    st.on('close', () => active--);
    // Streams the client cancelled, or that went unprocessed after a GOAWAY, end with an error.
    st.on('error', () => {});
    const chunks: Buffer[] = [];
    const rec: Seen = { raw, body: Buffer.alloc(0), trailers: [], session: st.session as http2.ServerHttp2Session, alpn: (st.session?.socket as { alpnProtocol?: string | false } | undefined)?.alpnProtocol };
    st.on('data', (d: Buffer) => chunks.push(d));
    st.on('trailers', (_t: unknown, _fl: unknown, r: string[]) => (rec.trailers = r));
    st.on('end', () => {
      rec.body = Buffer.concat(chunks);
      if (o.keep?.(st) ?? true) seen.push(rec);
      answer(st, rec);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    seen,
    port,
    get peak() {
      return peak;
    },
    sessions,
    close: () => {
      for (const s of sessions) s.destroy();
      srv.close();
    },
  };
}

const OK: Answer = (s) => {
  if (s.destroyed) return;
  s.respond({ ':status': 200, 'content-type': 'text/plain' });
  s.end('ok');
};
const opts = { maxConcurrency: 16, maxQueue: 1000, maxQueueBytes: 64 << 20, timeoutMs: 3000 };
const h2req = (o: Partial<OutgoingRequest> = {}): OutgoingRequest => ({ method: 'GET', target: '/x?y=1', headers: ['accept', '*/*'], body: Buffer.alloc(0), chunked: false, trailers: [], minorVersion: 1, h2: { authority: 'prod.example:8080' }, ...o });

/** An AnswerSink that keeps the digest. */
function sink(): AnswerSink & { got: ResponseDigest | null; reason: string | null } {
  return {
    snippetBytes: 16,
    captureJsonBytes: 0,
    got: null,
    reason: null,
    answered(d) {
      this.got = d;
    },
    failed(r) {
      this.reason = r;
    },
  };
}

test('?protocol=: h2c over http, h2 over https, http/1.1 explicit; anything else is a ConfigError naming it', () => {
  const def = { maxConcurrency: 4, maxQueue: 10, maxQueueBytes: 1024, timeoutMs: 1000 };
  assert.equal(parseDestination('http://10.0.0.37:50051?protocol=h2c', def).opts.protocol, 'h2c');
  assert.equal(parseDestination('https://test.internal?protocol=h2&timeout=2s', def).opts.protocol, 'h2');
  assert.equal(parseDestination('http://10.0.0.37?protocol=http/1.1', def).opts.protocol, 'http/1.1');
  assert.equal(parseDestination('http://10.0.0.37', def).opts.protocol, undefined);
  assert.throws(() => parseDestination('https://10.0.0.37?protocol=h2c', def), (e: Error) => e instanceof ConfigError && /h2c .*needs http:\/\//.test(e.message));
  assert.throws(() => parseDestination('http://10.0.0.37?protocol=h2', def), (e: Error) => e instanceof ConfigError && /h2 .*needs https:\/\//.test(e.message));
  assert.throws(() => parseDestination('http://10.0.0.37?protocol=h3', def), (e: Error) => e instanceof ConfigError && /protocol must be one of http\/1\.1, h2c, h2 \(got "h3"\)/.test(e.message));
  assert.throws(() => parseDestination('http://10.0.0.37?proto=h2c', def), /known: max-concurrency, max-queue, max-queue-bytes, timeout, protocol/);
});

test('h2c: pseudo-fields, fields in order (lower case, repeats kept), a body over 1 MiB and trailers arrive; the answer is digested with its trailers', async () => {
  const body = Buffer.alloc((1 << 20) + 12345);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
  const s = await h2Server((st, rec) => {
    st.respond({ ':status': 201, 'x-got': String(rec.body.length) }, { waitForTrailers: true });
    st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0', 'x-sum': createHash('sha256').update(rec.body).digest('hex') }));
    st.end(Buffer.from('answer body'));
  });
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${s.port}?protocol=h2c`, opts, out);
  const a = sink();
  d.enqueue(h2req({ method: 'POST', target: '/upload?n=1', headers: ['content-type', 'application/octet-stream', 'X-Mixed', '1', 'x-dup', 'a', 'x-dup', 'b', 'te', 'trailers'], body, trailers: ['x-checksum', 'abc'], answer: a }));
  await settle(out, 1);
  await d.drain(1000);
  s.close();
  assert.deepEqual(out.statuses, [201]);
  assert.deepEqual(out.drops, {});
  assert.equal(s.seen.length, 1);
  const r = s.seen[0];
  assert.deepEqual(r.raw.slice(0, 8), [':method', 'POST', ':path', '/upload?n=1', ':scheme', 'http', ':authority', 'prod.example:8080']);
  assert.deepEqual(r.raw.slice(8), ['content-type', 'application/octet-stream', 'x-mixed', '1', 'x-dup', 'a', 'x-dup', 'b', 'te', 'trailers']);
  assert.ok(r.body.equals(body), 'body bytes unchanged');
  assert.deepEqual(r.trailers, ['x-checksum', 'abc']);
  assert.equal(r.alpn, undefined, 'cleartext');
  const got = a.got!;
  assert.equal(got.status, 201);
  assert.deepEqual(got.headers.slice(0, 2), ['x-got', String(body.length)]);
  assert.equal(got.bodySha256, createHash('sha256').update('answer body').digest('hex'));
  assert.deepEqual(got.trailers, ['grpc-status', '0', 'x-sum', createHash('sha256').update(body).digest('hex')]);
});

test('many concurrent streams: the server\'s SETTINGS_MAX_CONCURRENT_STREAMS is respected, more sessions carry the rest', async () => {
  const held: http2.ServerHttp2Stream[] = [];
  // Answer in batches so that streams pile up to the limit.
  const s = await h2Server((st) => {
    held.push(st);
    setTimeout(() => OK(held.shift()!, {} as Seen), 20);
  }, { maxConcurrentStreams: 5 });
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${s.port}?protocol=h2c&max-concurrency=20`, opts, out);
  const N = 300;
  for (let i = 0; i < N; i++) d.enqueue(h2req({ target: `/i/${i}` }));
  await settle(out, N, 20_000);
  await d.drain(1000);
  s.close();
  assert.equal(out.statuses.length, N, JSON.stringify(out.drops));
  assert.equal(new Set(s.seen.map((r) => r.raw[3])).size, N, 'each request arrived once');
  const bySession = new Map<http2.ServerHttp2Session, number>();
  for (const r of s.seen) bySession.set(r.session, (bySession.get(r.session) ?? 0) + 1);
  assert.ok(bySession.size >= 4 && bySession.size <= 20, `sessions: ${bySession.size}`);
  assert.ok(s.peak <= 20, `peak concurrent streams at the server: ${s.peak}`);
  assert.deepEqual(out.errors, []);
  assert.equal(out.retries, 0, 'no stream was refused: the client kept to 5 per session');
});

test('GOAWAY mid-run: a new session carries the rest; streams the server did not process are resent once, counted; nothing else twice', async () => {
  let n = 0;
  let refused = 0;
  const last = new WeakMap<http2.Http2Session, number>();
  const s = await h2Server((st) => {
    const l = last.get(st.session!);
    if (l !== undefined && st.id! > l) {
      // As RFC 9113 §6.8 has it: a stream above the GOAWAY's last id is not processed.
      refused++;
      return;
    }
    n++;
    OK(st, {} as Seen);
    // Every 40th request: the server goes away, having processed only streams up to this one.
    if (n % 40 === 0) {
      last.set(st.session!, st.id!);
      st.session!.goaway(http2.constants.NGHTTP2_NO_ERROR, st.id!);
    }
  }, { keep: (st) => { const l = last.get(st.session!); return l === undefined || st.id! <= l; } });
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${s.port}?protocol=h2c&max-concurrency=32`, opts, out);
  const N = 400;
  // POSTs (not idempotent): only the server's word that a stream was unprocessed allows a resend.
  for (let i = 0; i < N; i++) d.enqueue(h2req({ method: 'POST', target: `/i/${i}`, body: Buffer.from(`b${i}`) }));
  await settle(out, N, 20_000);
  await d.drain(1000);
  s.close();
  assert.equal(out.statuses.length, N, `all answered (drops: ${JSON.stringify(out.drops)}, errors: ${out.errors.join()})`);
  const paths = s.seen.map((r) => r.raw[3]);
  assert.ok(refused + out.retries > 0);
  assert.equal(new Set(paths).size, N, 'every request reached the server');
  assert.equal(paths.length, N, 'none was processed twice');
  assert.ok(out.retries > 0, 'some streams were refused by GOAWAY and resent');
  assert.ok(new Set(s.seen.map((r) => r.session)).size >= N / 40, 'a new session after each GOAWAY');
});

test('a server that closes its connections (idle timeout, restart): the next request opens a new session', async () => {
  let n = 0;
  const s = await h2Server((st, rec) => {
    OK(st, rec);
    // Abruptly (no GOAWAY), once the answer is out.
    if (++n % 5 === 0) st.on('close', () => setTimeout(() => rec.session.destroy(), 2));
  });
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${s.port}?protocol=h2c`, opts, out);
  for (let i = 0; i < 20; i++) {
    d.enqueue(h2req({ target: `/seq/${i}` }));
    await settle(out, i + 1);
    // Sometimes right away (the close may still be on its way: the stream fails unanswered and is resent), sometimes later.
    if (i % 2) await new Promise((r) => setTimeout(r, 5));
  }
  await d.drain(1000);
  s.close();
  assert.equal(out.statuses.length, 20, JSON.stringify(out.drops));
  assert.equal(s.seen.length, 20);
  assert.ok(new Set(s.seen.map((r) => r.session)).size >= 4, `a new session after each close (${new Set(s.seen.map((r) => r.session)).size})`);
});

test('no answer within the timeout: counted as timeout (MR_TIMEOUT), the stream cancelled, the session kept for the next request', async () => {
  const cancelled: number[] = [];
  const s = await h2Server((st, rec) => {
    if (rec.raw[3] === '/slow') {
      st.on('close', () => cancelled.push(st.rstCode));
      return;
    }
    OK(st, rec);
  });
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${s.port}?protocol=h2c&timeout=300ms`, opts, out);
  const a = sink();
  d.enqueue(h2req({ target: '/slow', answer: a }));
  await settle(out, 1);
  d.enqueue(h2req({ target: '/fast' }));
  await settle(out, 2);
  await new Promise((r) => setTimeout(r, 50));
  await d.drain(1000);
  s.close();
  assert.deepEqual(out.drops, { timeout: 1 });
  assert.deepEqual(out.errors, ['MR_TIMEOUT']);
  assert.equal(a.reason, 'timeout');
  assert.deepEqual(out.statuses, [200]);
  assert.deepEqual(cancelled, [http2.constants.NGHTTP2_CANCEL]);
  assert.equal(new Set(s.seen.map((r) => r.session)).size, 1, 'the fast request went on the same session');
});

test('destination down: connect_error with ECONNREFUSED per request, then MR_DESTINATION_DOWN without connect attempts', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${port}?protocol=h2c`, opts, out);
  for (let i = 0; i < 5; i++) {
    d.enqueue(h2req());
    await settle(out, i + 1);
  }
  d.enqueue(h2req());
  await settle(out, 6);
  await d.drain(100);
  assert.deepEqual(out.drops, { connect_error: 6 });
  assert.deepEqual(out.errors, ['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'MR_DESTINATION_DOWN']);
  assert.equal(d.down, true);
});

test('a request of the other protocol is dropped as protocol_mismatch, never translated; fields HTTP/2 forbids are invalid_for_replay', async () => {
  const s = await h2Server(OK);
  const out = new Outcomes();
  const h2 = new Destination(`http://127.0.0.1:${s.port}?protocol=h2c`, opts, out);
  const h1 = new Destination(`http://127.0.0.1:${s.port}`, opts, out);
  const a = sink();
  h2.enqueue({ ...h2req(), h2: undefined, headers: ['Host', 'h'], answer: a });
  h1.enqueue(h2req());
  assert.deepEqual(out.drops, { protocol_mismatch: 2 });
  assert.equal(a.reason, 'protocol_mismatch');
  for (const headers of [['connection', 'close'], ['transfer-encoding', 'chunked'], ['upgrade', 'websocket'], ['keep-alive', '5'], ['proxy-connection', 'x'], ['te', 'gzip'], ['x-bad', 'a\r\nb'], ['content-type', 'a', 'content-type', 'b'], ['bad name', 'x']]) h2.enqueue(h2req({ headers }));
  h2.enqueue(h2req({ trailers: ['connection', 'close'] }));
  h2.enqueue(h2req({ method: 'CONNECT' }));
  assert.equal((out.drops as Record<string, number>).invalid_for_replay, 11);
  h2.enqueue(h2req({ headers: ['te', 'trailers'] }));
  await settle(out, 14);
  await h2.drain(500);
  await h1.drain(100);
  s.close();
  assert.deepEqual(out.statuses, [200], 'the session survived the refused ones');
  assert.equal(s.seen.length, 1);
});

test('h2 over TLS: ALPN h2 negotiated; a self-signed certificate refused by default, accepted with tlsInsecure; :scheme https', async (t) => {
  const creds = selfSignedPair();
  if (!creds) {
    if (process.env.CI === 'true') assert.fail('openssl is needed to make a test certificate');
    t.skip('openssl not found: cannot make a self-signed certificate');
    return;
  }
  const s = await h2Server(OK, { creds });
  const out = new Outcomes();
  const strict = new Destination(`https://127.0.0.1:${s.port}?protocol=h2`, opts, out);
  strict.enqueue(h2req());
  await settle(out, 1);
  await strict.drain(100);
  assert.equal(out.statuses.length, 0);
  assert.deepEqual(out.errors, ['DEPTH_ZERO_SELF_SIGNED_CERT']);
  const ok = new Outcomes();
  const d = new Destination(`https://127.0.0.1:${s.port}?protocol=h2`, { ...opts, tlsInsecure: true }, ok);
  for (let i = 0; i < 3; i++) d.enqueue(h2req({ method: 'PUT', body: Buffer.from('abc') }));
  await settle(ok, 3);
  await d.drain(1000);
  s.close();
  assert.deepEqual(ok.statuses, [200, 200, 200]);
  assert.equal(s.seen.length, 3);
  assert.equal(s.seen[0].alpn, 'h2');
  assert.deepEqual(s.seen[0].raw.slice(0, 8), [':method', 'PUT', ':path', '/x?y=1', ':scheme', 'https', ':authority', 'prod.example:8080']);
  assert.equal(new Set(s.seen.map((r) => r.session)).size, 1, 'one TLS session for all three');
});
