import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors.js';
import type { HttpRequest } from '../../src/http/types.js';
import { buildRateCaps, GLOBAL_RULE, parseRouteRate, parseRouteRates } from '../../src/replay/ratelimit.js';

const req = (target: string): HttpRequest => ({ method: 'GET', target, minorVersion: 1, headers: [], body: Buffer.alloc(0), chunked: false, trailers: [] });

test('route caps: the first matching rule caps its routes, others pass; refilled over time', () => {
  let t = 0;
  const caps = buildRateCaps(0, parseRouteRates(['10:^/api/search', '5:^/api/', '2:^/api/search/never']), () => t)!;
  const out: Record<string, number> = {};
  const offer = (target: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const r = caps(req(target));
      const k = `${target} ${r ?? 'sent'}`;
      out[k] = (out[k] ?? 0) + 1;
    }
  };
  offer('/api/search?q=1', 100);
  offer('/api/items', 100);
  offer('/static/a.css', 100);
  assert.deepEqual(out, {
    '/api/search?q=1 sent': 10,
    '/api/search?q=1 ^/api/search': 90,
    '/api/items sent': 5,
    '/api/items ^/api/': 95,
    '/static/a.css sent': 100,
  });
  t = 1000; // a second later: each bucket full again, never more than one second's worth
  let sent = 0;
  for (let i = 0; i < 100; i++) if (caps(req('/api/search')) === null) sent++;
  assert.equal(sent, 10);
  assert.equal(buildRateCaps(0, []), null, 'no cap: no step');
});

test('route and global caps together: a request one cap drops takes no token from the other', () => {
  const t = 0;
  const caps = buildRateCaps(20, parseRouteRates(['5:^/slow/']), () => t)!;
  const got: Array<string | null> = [];
  for (let i = 0; i < 50; i++) got.push(caps(req('/slow/x')));
  // 5 pass the route cap; the 45 it drops leave the global bucket alone, so 15 other requests still pass.
  assert.equal(got.filter((g) => g === null).length, 5);
  assert.equal(got.filter((g) => g === '^/slow/').length, 45);
  let other = 0;
  for (let i = 0; i < 50; i++) if (caps(req('/fast')) === null) other++;
  assert.equal(other, 15);
  assert.equal(caps(req('/fast')), GLOBAL_RULE);
});

test('route rule syntax: N:regex, split at the first colon; clear errors', () => {
  assert.deepEqual({ ...parseRouteRate('2.5:^/a:b$'), re: undefined }, { label: '^/a:b$', perSecond: 2.5, re: undefined });
  for (const bad of ['^/a', ':^/a', 'x:^/a', '0:^/a', '-1:^/a', '5:', '5:(']) assert.throws(() => parseRouteRate(bad), ConfigError, bad);
  assert.throws(() => parseRouteRate('5:('), /--route-rate "\(" is not a valid regular expression/);
  assert.throws(() => parseRouteRates(['1:^/a', '2:^/a']), /given twice/);
  assert.throws(() => parseRouteRates(['1:global']), /names the --rate cap/);
});
