/**
 * Real clients on loopback (node:http2, curl --http2-prior-knowledge, nghttp) against a node:http2
 * server, through a tee: the client-to-server bytes of each connection, cut at random points,
 * must give exactly the requests the server received (method, path, authority, fields in wire
 * order, body incl. over 1 MiB, trailers), each once; the server-to-client bytes must give its
 * answers per stream.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { PREFACE } from '../../src/http2/frames.js';
import { H2RequestReader } from '../../src/http2/requests.js';
import { H2AnswerReader } from '../../src/http2/answers.js';
import { DEFAULT_HTTP_LIMITS, type HttpRequest } from '../../src/http/types.js';
import { curl, nghttp, nodeClient, startLab, waitFor, type Lab, type Received } from './loopback.js';
import { Rng } from '../fuzz/fuzz.js';

let lab: Lab;
before(async () => {
  lab = await startLab();
});
after(async () => {
  await lab.close();
});

interface Read { requests: HttpRequest[]; drops: Array<[string, number]> }

/** The client-to-server bytes after the preface, pushed in random pieces. */
export function readRequests(bytes: Buffer, seed: number): Read {
  assert.ok(bytes.subarray(0, 24).equals(PREFACE), 'the connection starts with the preface');
  const out: Read = { requests: [], drops: [] };
  const r = new H2RequestReader({ onRequest: (q) => out.requests.push(q), onDrop: (reason, n) => { if (n > 0) out.drops.push([reason, n]); } }, DEFAULT_HTTP_LIMITS);
  const rng = new Rng(seed);
  for (let p = 24; p < bytes.length;) {
    const n = 1 + rng.int(rng.int(2) ? 30 : 70_000);
    // Through a copy that is scribbled over afterwards: views must not outlive the push.
    const piece = Buffer.from(bytes.subarray(p, p + n));
    r.push(piece, 0, piece.length);
    piece.fill(0xee);
    p += n;
  }
  r.end();
  return out;
}

const obj = (flat: string[]) => {
  const o: Record<string, string[]> = {};
  for (let i = 0; i < flat.length; i += 2) (o[flat[i]] ??= []).push(flat[i + 1]);
  return o;
};

function assertSame(got: HttpRequest[], want: Received[]): void {
  assert.equal(got.length, want.length, 'one request per stream the server received');
  const byId = new Map(want.map((w) => [w.streamId, w]));
  for (const g of got) {
    const w = byId.get(g.h2!.streamId);
    assert.ok(w, `stream ${g.h2!.streamId} was received`);
    byId.delete(g.h2!.streamId);
    assert.equal(g.method, w.method);
    assert.equal(g.target, w.path);
    assert.equal(g.authority, w.authority);
    assert.equal(g.h2!.scheme, w.scheme);
    assert.deepEqual(g.headers, w.headers, `fields of ${w.path} in wire order`);
    assert.ok(g.body.equals(w.body), `body of ${w.path}: ${g.body.length} vs ${w.body.length}`);
    assert.deepEqual(obj(g.trailers), obj(w.trailers));
    assert.equal(g.minorVersion, 1);
    assert.equal(g.chunked, false);
  }
}

/** Runs `client`, then checks the one new connection's bytes against what the server got. */
async function check(client: () => Promise<unknown>, expectN: number): Promise<{ got: HttpRequest[]; want: Received[]; toClient: Buffer }> {
  const r0 = lab.received.length;
  const t0 = lab.tees.length;
  await client();
  await waitFor(lab, r0 + expectN);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(lab.tees.length, t0 + 1, 'one connection');
  const want = lab.received.slice(r0);
  assert.equal(want.length, expectN);
  const bytes = Buffer.concat(lab.tees[t0].toServer);
  let got: HttpRequest[] = [];
  for (const seed of [1, 2, 3]) {
    const r = readRequests(bytes, seed);
    assert.deepEqual(r.drops, [], 'nothing dropped');
    assertSame(r.requests, want);
    got = r.requests;
  }
  return { got, want, toClient: Buffer.concat(lab.tees[t0].toClient) };
}

test('node:http2: 60 interleaved streams on one session, bodies up to 1.5 MiB, trailers, repeated fields', async () => {
  const big = Buffer.alloc(1_500_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
  const reqs = Array.from({ length: 60 }, (_, i) => ({
    method: i % 3 === 0 ? 'POST' : 'GET',
    path: `/item/${i}?q=${'x'.repeat(i)}`,
    headers: { 'x-request-id': `req-${i}`, cookie: ['a=1', `b=${i}`], 'user-agent': 'node-test', ...(i % 5 === 0 ? { 'x-big': 'v'.repeat(3000) } : {}) },
    body: i % 3 === 0 ? (i % 2 === 0 ? big.subarray(0, 100_000 + i * 20_000) : Buffer.from(`body ${i}`)) : undefined,
    trailers: i % 7 === 0 ? { 'grpc-status': '0', 'x-checksum': `c${i}` } : undefined,
  }));
  reqs[3].body = big;
  const { got } = await check(() => nodeClient(lab.port, reqs), reqs.length);
  assert.ok(got.some((g) => g.body.length === big.length), 'the 1.5 MiB body');
  assert.ok(got.some((g) => g.trailers.length > 0), 'trailers');
});

// curl 7.88 fails its second request on a reused prior-knowledge connection to node:http2
// ("Error in the HTTP2 framing layer"), so one request per connection here; nghttp does many.
test('curl --http2-prior-knowledge: a GET with extra fields, a 1.2 MiB POST', async () => {
  await check(() => curl(lab.port, ['-H', 'x-curl: yes', '-H', 'cookie: a=1; b=2'], ['/c/2?a=b']), 1);
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const f = path.join(os.tmpdir(), `mr-h2-${process.pid}.bin`);
  fs.writeFileSync(f, Buffer.alloc(1_200_000, 0x61));
  try {
    const { got } = await check(() => curl(lab.port, ['--data-binary', `@${f}`, '-H', 'content-type: application/octet-stream'], ['/upload']), 1);
    assert.equal(got[0].body.length, 1_200_000);
    assert.equal(got[0].method, 'POST');
  } finally {
    fs.rmSync(f, { force: true });
  }
});

test('nghttp: concurrent URIs with extra fields on one connection', async () => {
  await check(() => nghttp(lab.port, ['-H', 'x-nghttp: 1', '-H', 'accept: */*'], ['/n/a', '/n/b', '/n/c', '/n/d?x=1']), 4);
  await check(() => nghttp(lab.port, ['-d', '/etc/os-release'], ['/n/post']), 1);
});

test('production answers per stream from the server-to-client bytes', async () => {
  const reqs = Array.from({ length: 20 }, (_, i) => ({ method: 'POST', path: `/a/${i}`, body: Buffer.from(`b${i}`), trailers: i % 2 ? { 'x-t': '1' } : undefined }));
  const { toClient } = await check(() => nodeClient(lab.port, reqs), reqs.length);
  const heads = new Map<number, number>();
  const bodies = new Map<number, string>();
  const ends = new Map<number, string[]>();
  const lost: unknown[] = [];
  const a = new H2AnswerReader({
    onHead: (id, status) => heads.set(id, status),
    onBody: (id, b, s, e) => bodies.set(id, (bodies.get(id) ?? '') + b.toString('latin1', s, e)),
    onEnd: (id, t) => ends.set(id, t),
    onLost: (id, reason) => lost.push([id, reason]),
  }, DEFAULT_HTTP_LIMITS);
  const rng = new Rng(7);
  for (let p = 0; p < toClient.length;) {
    const n = 1 + rng.int(200);
    a.push(toClient, p, Math.min(n, toClient.length - p));
    p += n;
  }
  a.end();
  assert.deepEqual(lost, []);
  assert.equal(heads.size, 20);
  for (const [id, st] of heads) {
    assert.equal(st, 200);
    assert.match(bodies.get(id)!, /^you asked for \/a\/\d+$/);
  }
  const withTrailers = [...ends.values()].filter((t) => t.length > 0);
  assert.equal(withTrailers.length, 10);
  assert.deepEqual(obj(withTrailers[0]), { 'grpc-status': ['0'], 'grpc-message': ['ok'] });
});
