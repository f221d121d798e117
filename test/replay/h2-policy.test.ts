/**
 * The policy chain in front of an HTTP/2 destination runs as for HTTP/1.x: filters, rewrites,
 * forwarded headers, marker and copy headers, with :authority playing Host's part. Checked at a
 * real node:http2 server on loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { HttpRequest } from '../../src/http/types.js';
import { NO_FILTERS } from '../../src/replay/filters.js';
import { NO_REWRITES } from '../../src/replay/rewrite.js';
import { Replayer, type ReplayOptions } from '../../src/replay/replayer.js';
import { Outcomes } from '../fixtures/outcomes.js';

async function server() {
  const got: string[][] = [];
  const srv = http2.createServer();
  srv.on('session', (s) => s.on('error', () => {}));
  srv.on('stream', (st: http2.ServerHttp2Stream, _h: unknown, _f: unknown, raw: string[]) => {
    st.on('error', () => {});
    got.push(raw);
    st.resume();
    st.on('end', () => {
      st.respond({ ':status': 204 });
      st.end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return { got, host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}?protocol=h2c`, close: () => srv.close() };
}

const flow = { clientAddr: '192.0.2.1', clientPort: 1234, serverAddr: '10.9.9.9', serverPort: 50051, ipVersion: 4 };
const h2 = (target: string, headers: string[], authority: string | null = 'prod.internal:50051'): HttpRequest => ({ method: 'GET', target, authority: authority ?? undefined, minorVersion: 1, headers, body: Buffer.alloc(0), chunked: false, trailers: [], h2: { scheme: 'http', streamId: 1 } });
const h1 = (target: string): HttpRequest => ({ method: 'GET', target, minorVersion: 1, headers: ['Host', 'prod'], body: Buffer.alloc(0), chunked: false, trailers: [] });

function options(destinations: string[], extra: Partial<ReplayOptions> = {}): ReplayOptions {
  return { destinations, keepHost: false, sampling: { percentage: 100, by: 'random' }, rate: 0, filters: NO_FILTERS, rewrites: NO_REWRITES, maxConcurrency: 8, maxQueue: 1000, maxQueueBytes: 1 << 20, timeoutMs: 2000, ...extra };
}

test('h2: :authority is the destination\'s (production\'s with keep-host); rewrites, filters, forwarded, marker and copy headers apply, lower case', async () => {
  const s = await server();
  const out = new Outcomes();
  const r = new Replayer(
    options([s.url], {
      filters: { ...NO_FILTERS, disallowHeaders: ['X-Skip: yes'] },
      rewrites: { setHeaders: ['X-Env: test'], removeHeaders: ['Authorization'], rewriteUrls: ['^/old/:/new/'] },
      markHeader: 'X-Mirror-Replay',
      sampling: { percentage: 200, by: 'random' },
      copyHeader: 'X-Mirror-Copy',
    }),
    out,
  );
  r.submit(h2('/old/a', ['authorization', 'Bearer x', 'x-env', 'prod', 'te', 'trailers', 'x-forwarded-for', '198.51.100.9']), flow);
  r.submit(h2('/b', ['x-skip', 'yes']), flow);
  await r.drain(2000);
  const k = new Replayer(options([s.url], { keepHost: true }), out);
  k.submit(h2('/kept', []), flow);
  // Production sent host instead of :authority: :authority follows the (forwarded) host value.
  k.submit(h2('/host-only', ['host', 'legacy.internal'], null), flow);
  await k.drain(2000);
  s.close();
  assert.deepEqual(out.drops, { filtered: 1 });
  assert.equal(s.got.length, 4);
  const orig = s.got.find((g) => !g.includes('x-mirror-copy'))!;
  assert.deepEqual(orig, [
    ':method', 'GET', ':path', '/new/a', ':scheme', 'http', ':authority', s.host,
    'x-env', 'test', 'te', 'trailers', 'x-forwarded-for', '198.51.100.9, 192.0.2.1', 'x-forwarded-port', '50051', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'prod.internal:50051', 'x-mirror-replay', '1',
  ]);
  const copy = s.got.find((g) => g.includes('x-mirror-copy'))!;
  assert.deepEqual(copy.slice(-2), ['x-mirror-copy', '1']);
  const kept = s.got.find((g) => g.includes('/kept'))!;
  assert.equal(kept[kept.indexOf(':authority') + 1], 'prod.internal:50051');
  const legacy = s.got.find((g) => g.includes('/host-only'))!;
  assert.equal(legacy[legacy.indexOf(':authority') + 1], 'legacy.internal');
  assert.equal(legacy[legacy.indexOf('host') + 1], 'legacy.internal');
});

test('mixed traffic, one destination of each protocol: each gets its own, the other is counted as protocol_mismatch', async () => {
  const s2 = await server();
  const s1 = await new Promise<{ url: string; n: () => number; close: () => void }>((resolve) => {
    let n = 0;
    const h1srv = http.createServer((_q, res) => {
      n++;
      res.end('ok');
    });
    h1srv.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(h1srv.address() as net.AddressInfo).port}`, n: () => n, close: () => h1srv.close() }));
  });
  const out = new Outcomes();
  const r = new Replayer(options([s2.url, s1.url]), out);
  for (let i = 0; i < 10; i++) r.submit(i % 2 ? h1(`/one/${i}`) : h2(`/two/${i}`, []), flow);
  await r.drain(2000);
  s1.close();
  s2.close();
  assert.equal(s2.got.length, 5);
  assert.ok(s2.got.every((g) => g[3].startsWith('/two/')));
  assert.equal(s1.n(), 5);
  assert.deepEqual(out.drops, { protocol_mismatch: 10 });
  assert.equal(out.replayedN, 10);
});
