/**
 * The switch from HTTP/1.x (Http1Or2, the sink stages.ts builds): prior knowledge from a real
 * node:http2 client, an h2c upgrade from nghttp -u (the upgrade request becomes stream 1), an
 * upgrade the server ignored, and prefaces that are not HTTP/2.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Http1Or2 } from '../../src/http2/switch.js';
import { DEFAULT_HTTP_LIMITS, type HttpRequest } from '../../src/http/types.js';
import { nghttp, nodeClient, startLab, waitFor, type Lab } from './loopback.js';
import { Rng } from '../fuzz/fuzz.js';

let lab: Lab;
before(async () => {
  lab = await startLab();
});
after(async () => {
  await lab.close();
});

interface Out { requests: HttpRequest[]; drops: Record<string, number>; starts: string[] }

function feed(bytes: Buffer, seed: number, midstream = false): Out {
  const out: Out = { requests: [], drops: {}, starts: [] };
  const sink = new Http1Or2({
    onRequest: (r) => out.requests.push(r),
    onDrop: (reason, n) => { if (n > 0) out.drops[reason] = (out.drops[reason] ?? 0) + n; },
  }, DEFAULT_HTTP_LIMITS, midstream, (how) => out.starts.push(how));
  const rng = new Rng(seed);
  for (let p = 0; p < bytes.length;) {
    const n = 1 + rng.int(rng.int(2) ? 20 : 3000);
    const piece = Buffer.from(bytes.subarray(p, p + n));
    sink.push(piece, 0, piece.length);
    piece.fill(0);
    p += n;
  }
  sink.end();
  return out;
}

test('prior knowledge: a node:http2 connection from its first byte gives every request, cut anywhere', async () => {
  const t0 = lab.tees.length;
  const r0 = lab.received.length;
  await nodeClient(lab.port, Array.from({ length: 10 }, (_, i) => ({ method: 'PUT', path: `/pk/${i}`, body: Buffer.alloc(i * 1000, i) })));
  await waitFor(lab, r0 + 10);
  const bytes = Buffer.concat(lab.tees[t0].toServer);
  for (const seed of [1, 2, 3, 4]) {
    const out = feed(bytes, seed);
    assert.deepEqual(out.drops, {});
    assert.deepEqual(out.requests.map((r) => r.target).sort(), lab.received.slice(r0).map((r) => r.path).sort());
    assert.ok(out.requests.every((r) => r.h2 && r.method === 'PUT'));
    assert.deepEqual(out.starts, ['prior_knowledge']);
  }
});

test('h2c upgrade (nghttp -u): the upgrade request is stream 1, later streams follow over HTTP/2', async () => {
  const t0 = lab.tees.length;
  const r0 = lab.received.length;
  // Stream 1 gets no answer from node:http2 (see loopback.ts): nghttp times out, the bytes are what count.
  await nghttp(lab.port, ['-u', '-t', '2', '-H', 'x-up: 1'], ['/u/1', '/u/2', '/u/3']).catch(() => {});
  await waitFor(lab, r0 + 2);
  const bytes = Buffer.concat(lab.tees[t0].toServer);
  assert.match(bytes.toString('latin1', 0, 200), /^GET \/u\/1 HTTP\/1\.1\r\n[^]*Upgrade: h2c/i);
  for (const seed of [1, 2, 3]) {
    const out = feed(bytes, seed);
    assert.deepEqual(out.drops, {});
    assert.deepEqual(out.starts, ['upgrade']);
    const one = out.requests.find((r) => r.h2?.streamId === 1);
    assert.ok(one, 'stream 1: the upgrade request');
    assert.equal(one.method, 'GET');
    assert.equal(one.target, '/u/1');
    assert.equal(one.authority, `127.0.0.1:${lab.port}`);
    assert.equal(one.h2!.scheme, 'http');
    const names = one.headers.filter((_, i) => i % 2 === 0);
    for (const n of ['host', 'connection', 'upgrade', 'http2-settings']) assert.ok(!names.includes(n), `${n} is not an HTTP/2 field`);
    assert.ok(names.includes('x-up'));
    const rest = out.requests.filter((r) => r.h2!.streamId !== 1);
    const got = lab.received.slice(r0);
    assert.deepEqual(rest.map((r) => [r.h2!.streamId, r.target, r.headers]), got.map((g) => [g.streamId, g.path, g.headers]).sort((a, b) => Number(a[0]) - Number(b[0])));
  }
});

const SETTINGS_FRAME = Buffer.from('000000040000000000', 'hex');
const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
// HEADERS, stream 1, END_STREAM|END_HEADERS: :method GET, :scheme http, :path /, :authority www.example.com (RFC 7541 C.3.1)
const HEADERS_1 = Buffer.concat([Buffer.from('000014010500000001', 'hex'), Buffer.from('828684410f7777772e6578616d706c652e636f6d', 'hex')]);

test('an upgrade the server ignored: the upgrade request is http_upgrade, HTTP/1.1 goes on', () => {
  const wire = Buffer.from('GET /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n', 'latin1');
  for (const seed of [1, 2, 3]) {
    const out = feed(wire, seed);
    assert.deepEqual(out.drops, { http_upgrade: 1 });
    assert.deepEqual(out.requests.map((r) => [r.target, r.h2]), [['/b', undefined]]);
  }
});

test('an h2c upgrade with a body: the whole request is stream 1', () => {
  const wire = Buffer.concat([
    Buffer.from('POST /up HTTP/1.1\r\nHost: h:8080\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello', 'latin1'),
    Buffer.from(PREFACE, 'latin1'), SETTINGS_FRAME, Buffer.from(HEADERS_1.toString('hex').replace('00000001', '00000003'), 'hex'),
  ]);
  const out = feed(wire, 5);
  assert.deepEqual(out.drops, {});
  assert.deepEqual(out.requests.map((r) => [r.h2!.streamId, r.method, r.target, r.authority, r.body.toString()]), [
    [1, 'POST', '/up', 'h:8080', 'hello'],
    [3, 'GET', '/', 'www.example.com', ''],
  ]);
  assert.deepEqual(out.requests[0].headers, ['content-length', '5']);
});

test('prefaces that are not HTTP/2 stay counted drops: another version, or no SETTINGS after it', () => {
  assert.deepEqual(feed(Buffer.from('PRI * HTTP/2.1\r\n\r\nSM\r\n\r\n', 'latin1'), 1).drops, { http2_preface: 1 });
  const noSettings = Buffer.concat([Buffer.from(PREFACE, 'latin1'), HEADERS_1]);
  const out = feed(noSettings, 1);
  assert.deepEqual(out.requests, []);
  assert.deepEqual(out.drops, { http2_preface: 1 });
  const ok = feed(Buffer.concat([Buffer.from(PREFACE, 'latin1'), SETTINGS_FRAME, HEADERS_1]), 1);
  assert.equal(ok.requests.length, 1);
  assert.equal(ok.requests[0].authority, 'www.example.com');
});

test('a connection picked up midstream: HTTP/2 frames are recognised (http2_midstream), nothing replayed; HTTP/1.1 is not mistaken for them', async () => {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/h2');
  const c2s = fs.readFileSync(path.join(dir, 'node.c2s.bin'));
  let recognised = 0;
  for (let cut = 30; cut < c2s.length - 200; cut += 97) {
    const out = feed(c2s.subarray(cut), cut, true);
    assert.deepEqual(out.requests, [], `cut at ${cut}: nothing replayed`);
    assert.ok(!('http_malformed' in out.drops), `cut at ${cut}: ${JSON.stringify(out.drops)}`);
    if (out.drops.http2_midstream) {
      recognised++;
      assert.deepEqual(out.starts, ['midstream']);
    }
  }
  assert.ok(recognised > 0, 'some pickups are recognised as HTTP/2');
  const h1 = Buffer.from('dy-of-an-earlier-request\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\nPOST /y HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc', 'latin1');
  for (const seed of [1, 2]) {
    const out = feed(h1, seed, true);
    assert.deepEqual(out.requests.map((r) => r.target), ['/x', '/y']);
    assert.deepEqual(out.drops, {});
    assert.deepEqual(out.starts, []);
  }
});
