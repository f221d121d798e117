import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRewriter, NO_REWRITES } from '../../src/replay/rewrite.js';
import { rateLimiter } from '../../src/replay/ratelimit.js';
import { loopGuard, parseMarker } from '../../src/replay/loop.js';
import type { HttpRequest } from '../../src/http/types.js';

test('no rewrites: no step', () => {
  assert.equal(buildRewriter(NO_REWRITES), null);
});

test('remove-header scrubs every occurrence, any case; set-header replaces in place or appends', () => {
  const r = buildRewriter({ setHeaders: ['X-Env: test', 'X-New: 1'], removeHeaders: ['Authorization', 'cookie'], rewriteUrls: [] })!;
  const out = r.headers(['Host', 'h', 'authorization', 'Bearer x', 'Cookie', 'a=1', 'x-env', 'prod', 'COOKIE', 'b=2', 'X-Env', 'prod2', 'Accept', '*/*']);
  assert.deepEqual(out, ['Host', 'h', 'x-env', 'test', 'Accept', '*/*', 'X-New', '1']);
});

test('rewrite-url applies regex:replacement with groups, in order', () => {
  const r = buildRewriter({ setHeaders: [], removeHeaders: [], rewriteUrls: ['^/v1/user/([^/]+)/ping:/v2/user/$1/ping', 'a=1:a=2'] })!;
  assert.equal(r.target('/v1/user/42/ping?a=1'), '/v2/user/42/ping?a=2');
  assert.equal(r.target('/other'), '/other');
  assert.throws(() => buildRewriter({ setHeaders: [], removeHeaders: [], rewriteUrls: ['nocolon'] }), /--http-rewrite-url/);
  assert.throws(() => buildRewriter({ setHeaders: ['X-A: a\r\nEvil: 1'], removeHeaders: [], rewriteUrls: [] }), /--http-set-header/);
});

test('rate limiter: at most N per second, refilled over time', () => {
  let t = 0;
  const allow = rateLimiter(100, () => t);
  let n = 0;
  for (let i = 0; i < 1000; i++) if (allow()) n++;
  assert.equal(n, 100);
  t = 500;
  n = 0;
  for (let i = 0; i < 1000; i++) if (allow()) n++;
  assert.equal(n, 50);
  // Steady 200/s offered for 10 s at 1 ms steps: ~100/s pass.
  n = 0;
  for (let i = 0; i < 10_000; i += 5) {
    t = 1000 + i;
    if (allow()) n++;
  }
  assert.ok(n >= 990 && n <= 1101, String(n));
});

test('loop guard: marker header, and flows whose server is a destination', () => {
  const req = (headers: string[]): HttpRequest => ({ method: 'GET', target: '/', minorVersion: 1, headers, body: Buffer.alloc(0), chunked: false, trailers: [] });
  const flow = (addr: string, port = 80) => ({ clientAddr: '1.1.1.1', clientPort: 1, serverAddr: addr, serverPort: port, ipVersion: 4 });
  let loops = 0;
  const g = loopGuard(parseMarker('X-Mirror-Replay'), [{ addresses: ['10.0.0.37'], port: 80 }], () => loops++);
  assert.equal(g(req(['x-mirror-replay', '1']), flow('10.0.0.5')), true);
  assert.equal(g(req([]), flow('10.0.0.37')), true);
  assert.equal(loops, 1);
  assert.equal(g(req([]), flow('10.0.0.37', 8080)), false);
  assert.equal(g(req([]), flow('10.0.0.5')), false);
  assert.deepEqual(parseMarker('X-Replayed-By: mirror-replay'), { name: 'X-Replayed-By', lower: 'x-replayed-by', value: 'mirror-replay' });
  assert.throws(() => parseMarker('bad name'), /--mark-header/);
  assert.throws(() => parseMarker('X-Mark: a\x00b'), /--mark-header/, 'a CTL in the value would make the test environment refuse the request');
});
